// The zones a secondary DNS carries, derived as MAAS names them (lib/maas/zones.ts; docs/maas.md, "Reverse zones").
import test from 'ava';
import { reverseZones, zonesFromRows } from '../../../lib/maas/zones.ts';

const TABLE: [string, string[]][] = [
  ['10.0.0.0/8', ['10.in-addr.arpa']],
  ['172.16.0.0/16', ['16.172.in-addr.arpa']],
  ['192.168.10.0/24', ['10.168.192.in-addr.arpa']],
  ['192.168.10.77/24', ['10.168.192.in-addr.arpa']],
  ['10.0.4.0/22', ['4.0.10.in-addr.arpa', '5.0.10.in-addr.arpa', '6.0.10.in-addr.arpa', '7.0.10.in-addr.arpa']],
  ['172.16.0.0/15', ['16.172.in-addr.arpa', '17.172.in-addr.arpa']],
  ['192.0.2.64/26', ['64-26.2.0.192.in-addr.arpa', '2.0.192.in-addr.arpa']],
  ['192.0.2.5/32', ['5-32.2.0.192.in-addr.arpa', '2.0.192.in-addr.arpa']],
  ['2001:db8::/32', ['8.b.d.0.1.0.0.2.ip6.arpa']],
  ['2001:db8:0:1::/64', ['1.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa']],
  ['2001:db8::/31', ['8.b.d.0.1.0.0.2.ip6.arpa', '9.b.d.0.1.0.0.2.ip6.arpa']],
  ['fd00::10/126', ['0-126.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa', '1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa']],
];

for (const [cidr, zones] of TABLE) {
  test(`reverse zones: ${cidr} → ${zones.join(', ')}`, (t) => {
    t.deepEqual(reverseZones(cidr), zones);
  });
}

test('reverse zones: a malformed CIDR or an oversized split is refused, naming it', (t) => {
  t.throws(() => reverseZones('10.0.0.0'), { message: /"10.0.0.0" is not a CIDR/ });
  t.throws(() => reverseZones('10.0.0.0/33'), { message: /longer than 32 bits/ });
  t.throws(() => reverseZones('300.0.0.0/8'), { message: /not a CIDR/ });
  t.notThrows(() => reverseZones('0.0.0.0/1'));
});

test('zones from the MAAS database: authoritative domains, then reverse zones, each once; the rest said why', (t) => {
  const z = zonesFromRows(
    [
      { name: 'maas', authoritative: true },
      { name: 'example.com', authoritative: false },
      { name: 'Lab.Example.', authoritative: true },
    ],
    [
      { cidr: '10.0.0.0/24' },
      { cidr: '10.0.0.128/25', rdns_mode: 2 },
      { cidr: '10.9.0.0/24', rdns_mode: 0 },
      { cidr: 'garbage' },
    ],
  );
  t.deepEqual(z.zones, ['lab.example', 'maas', '0.0.10.in-addr.arpa', '128-25.0.0.10.in-addr.arpa']);
  t.is(z.skipped.length, 3);
  t.regex(z.skipped.join('\n'), /example\.com: not authoritative/);
  t.regex(z.skipped.join('\n'), /10\.9\.0\.0\/24: reverse DNS disabled/);
  t.regex(z.skipped.join('\n'), /garbage/);
});
