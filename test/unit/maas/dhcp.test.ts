// Every machine and rack gets every DNS server (lib/maas/dhcp.ts): MAAS 1.x's template line, 2.x/3.x's commands.
import test from 'ava';
import { patchDhcpTemplate, subnetCommands } from '../../../lib/maas/dhcp.ts';

// The shape of MAAS 1.x's packaged dhcpd.conf.template around the line (docs/maas.md, "DNS servers for DHCP").
const TEMPLATE = [
  'subnet {{subnet}} netmask {{subnet_mask}} {',
  '       {{bootloader}}',
  '       interface "{{interface}}";',
  '       ignore-client-uids true;',
  '       option subnet-mask {{subnet_mask}};',
  '       option broadcast-address {{broadcast_ip}};',
  '       option domain-name-servers {{dns_servers}};',
  '       option domain-name "{{domain_name}}";',
  '       option routers {{router_ip}};',
  '}',
  '',
].join('\n');

test('render dhcp (MAAS 1.x): the domain-name-servers line lists every region controller, as a patch', (t) => {
  const p = patchDhcpTemplate(TEMPLATE, ['10.0.0.11', '10.0.0.12'], '/etc/maas/templates/dhcp/dhcpd.conf.template');
  t.is(p.lines, 1);
  t.regex(p.text, /^ {7}option domain-name-servers 10\.0\.0\.11, 10\.0\.0\.12;$/m);
  t.is(p.text.split('\n').length, TEMPLATE.split('\n').length);
  t.is(
    p.diff,
    [
      '--- /etc/maas/templates/dhcp/dhcpd.conf.template',
      '+++ /etc/maas/templates/dhcp/dhcpd.conf.template (maas-ha)',
      '@@ -4,7 +4,7 @@',
      '        ignore-client-uids true;',
      '        option subnet-mask {{subnet_mask}};',
      '        option broadcast-address {{broadcast_ip}};',
      '-       option domain-name-servers {{dns_servers}};',
      '+       option domain-name-servers 10.0.0.11, 10.0.0.12;',
      '        option domain-name "{{domain_name}}";',
      '        option routers {{router_ip}};',
      ' }',
      '',
    ].join('\n'),
  );
});

test('render dhcp (MAAS 1.x): a second run changes nothing (empty patch)', (t) => {
  const once = patchDhcpTemplate(TEMPLATE, ['10.0.0.11', '10.0.0.12']);
  const twice = patchDhcpTemplate(once.text, ['10.0.0.11', '10.0.0.12']);
  t.is(twice.text, once.text);
  t.is(twice.diff, '');
});

test('render dhcp (MAAS 1.x): a template without the line is refused, naming the file', (t) => {
  t.throws(() => patchDhcpTemplate('subnet x {\n}\n', ['10.0.0.11'], '/x/dhcpd.conf.template'), { message: /\/x\/dhcpd\.conf\.template: no "option domain-name-servers/ });
  t.throws(() => patchDhcpTemplate(TEMPLATE, []), { message: /no DNS servers/ });
});

test('render dhcp (MAAS 2.x/3.x): one maas CLI line per subnet with every DNS server', (t) => {
  t.deepEqual(subnetCommands('admin', ['10.0.0.0/24', '10.1.0.0/24'], ['10.0.0.11', '10.0.0.12']), [
    'maas admin subnet update 10.0.0.0/24 dns_servers=10.0.0.11,10.0.0.12',
    'maas admin subnet update 10.1.0.0/24 dns_servers=10.0.0.11,10.0.0.12',
  ]);
});
