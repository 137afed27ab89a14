#!/usr/bin/env bash
# maas-ha installer: system packages, npm dependencies, the bundled hooks, and `maas-ha` on PATH.
# Idempotent: a second run installs nothing new and reports every step as unchanged.
#
#   ./install.sh            everything needed for the lab and the tests (this machine as a lab host)
#   ./install.sh --config /srv/maas-ha/cluster.yaml
#                           check and install from a configuration outside /etc/maas-ha (else $MAAS_HA_CONFIG)
#   ./install.sh --database-host /var/lib/postgresql/15/main
#                           also put pgpool's online-recovery wrappers into that data directory (a database host),
#                           and, under systemd, install that node's split-brain guard (maas-ha-guard, see below)
#   ./install.sh --uninstall [--database-host DATADIR]
#                           remove what install.sh put in place: the bundle, the links on PATH, the guard's units
#                           (those that run this bundle), the sudoers drop-in, fence ruleset and sysctl file (default
#                           prefix only), and the recovery wrappers in each DATADIR named; keep the configuration,
#                           state_dir, every data directory and the system packages, and say so
#
# The hooks are bundled into /usr/local/lib/maas-ha/dist/bin: a database host needs `node` (>= 20) and that
# directory, nothing else (no node_modules).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
prefix="${MAAS_HA_PREFIX:-/usr/local}"
libdir="$prefix/lib/maas-ha"
bindir="$prefix/bin"
changed=0
say() { printf 'install.sh: %s\n' "$*"; }
sysctl_file=/etc/sysctl.d/60-maas-ha-nonlocal-bind.conf
sudoers=0
uninstall=0
datadirs=()
cfg_arg=""
for a in "$@"; do
  # --help anywhere: the usage (this file's opening comment), nothing installed.
  case "$a" in --help|-h) sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;; esac
done
while [ "$#" -gt 0 ]; do
  case "$1" in
    # the configuration to check and install from (default: $MAAS_HA_CONFIG, else /etc/maas-ha/maas-ha.yaml)
    --config) [ "$#" -ge 2 ] || { say "--config needs the configuration file"; exit 2; }; cfg_arg="$2"; shift ;;
    --config=*) cfg_arg="${1#*=}" ;;
    --sudoers) sudoers=1 ;;   # production: the VIP hooks' sudoers drop-in and fence ruleset (see below)
    --uninstall) uninstall=1 ;;
    # production, on a database host: pgpool's online-recovery wrappers into this PostgreSQL's data directory
    --database-host) [ "$#" -ge 2 ] || { say "--database-host needs the data directory of this host's PostgreSQL"; exit 2; }; datadirs+=("$2"); shift ;;
    --database-host=*) datadirs+=("${1#*=}") ;;
    *) say "unknown option $1 (known: --config FILE, --sudoers, --database-host DATADIR, --uninstall)"; exit 2 ;;
  esac
  shift
done

[ "$(id -u)" -eq 0 ] || { say "run me as root (I install packages and write $libdir)"; exit 2; }

# ---- --uninstall: remove only what this script put in place, each thing only when it is provably this install's;
# everything an operator wrote or the cluster needs stays, and the closing lines say what was kept. Needs no node.
if [ "$uninstall" -eq 1 ]; then
  [ "$sudoers" -eq 0 ] || { say "--uninstall removes the sudoers drop-in itself: drop --sudoers"; exit 2; }
  cfg="${cfg_arg:-${MAAS_HA_CONFIG:-/etc/maas-ha/maas-ha.yaml}}"
  removed=0
  gone() { say "removed $1"; removed=1; }
  # The guard's units: those whose command runs this bundle (a unit of another install, or one edited to run
  # something else, is not ours to remove). The service is stopped first; PostgreSQL itself is not touched.
  units_changed=0
  for u in /etc/systemd/system/maas-ha-guard.service /etc/systemd/system/postgresql@*.service.d/maas-ha-guard.conf; do
    [ -f "$u" ] && grep -qF "$libdir/dist/bin/" "$u" || continue
    if [ "$(basename "$u")" = maas-ha-guard.service ] && [ -d /run/systemd/system ]; then
      timeout 60 systemctl disable --now -q maas-ha-guard.service || say "could not stop maas-ha-guard.service (removing its unit anyway)"
    fi
    rm -f -- "$u"; gone "$u"; units_changed=1
    case "$u" in *.service.d/*) rmdir --ignore-fail-on-non-empty -- "$(dirname -- "$u")" ;; esac
  done
  if [ "$units_changed" -eq 1 ] && [ -d /run/systemd/system ]; then timeout 60 systemctl daemon-reload; fi
  # The sudoers drop-in and the fence ruleset are system-wide: only the install with the default prefix owns them.
  # The ruleset's path is the configuration's (vip.fence.file), asked of the bundle before it goes.
  if [ -z "${MAAS_HA_PREFIX:-}" ]; then
    fence=""
    if [ -f /etc/sudoers.d/maas-ha ] && [ -x "$bindir/maas-ha" ] && [ -f "$cfg" ]; then
      fence="$(timeout 30 "$bindir/maas-ha" config get vip.fence.file --config "$cfg" 2>/dev/null || true)"
    fi
    if [ -f /etc/sudoers.d/maas-ha ]; then rm -f /etc/sudoers.d/maas-ha; gone /etc/sudoers.d/maas-ha; fi
    if head -n 1 "$sysctl_file" 2>/dev/null | grep -q '^# maas-ha: '; then rm -f -- "$sysctl_file"; gone "$sysctl_file (the running kernel keeps ip_nonlocal_bind until a reboot)"; fi
    if [ -n "$fence" ] && [ -f "$fence" ]; then rm -f -- "$fence"; gone "$fence (the fence ruleset; a fence loaded now stays loaded until: nft delete table inet maas_ha)"; fi
  fi
  # Recovery wrappers: only in the data directories named, and only files maas-ha wrote that run this bundle.
  for d in ${datadirs[@]+"${datadirs[@]}"}; do
    for w in recovery_1st_stage pgpool_remote_start; do
      f="$d/$w"
      if [ -f "$f" ] && [ ! -L "$f" ] && sed -n 2p "$f" | grep -q '^# Written by maas-ha\.' && grep -qF "$libdir/dist/bin/" "$f"; then
        rm -f -- "$f"; gone "$f"
      elif [ -e "$f" ]; then
        say "kept $f: not a recovery wrapper of this install"
      fi
    done
  done
  # The links on PATH that point into the bundle, then the bundle.
  for link in "$bindir"/maas-ha*; do
    [ -L "$link" ] && case "$(readlink "$link")" in "$libdir"/*) rm -f -- "$link"; gone "$link" ;; esac
  done
  if [ -d "$libdir" ]; then rm -rf -- "$libdir"; gone "$libdir"; fi
  [ "$removed" -eq 1 ] || say "nothing of maas-ha was installed under $prefix"
  say "kept: the configuration ($cfg and its directory, with the checked copy beside it), state_dir (journals, fencing markers), every PostgreSQL data directory (and any *.maas-ha-old-* beside it), the system packages and this checkout"
  [ "${#datadirs[@]}" -gt 0 ] || say "kept: the recovery wrappers in data directories (name each with --database-host DATADIR to remove them)"
  exit 0
fi

# ---- Node.js >= 20
# (Debian 12's own nodejs package is 18: too old, so it is not installed from here.)
command -v node >/dev/null 2>&1 || { say "node is missing: install Node.js >= 20 first"; exit 2; }
major="$(node -p 'process.versions.node.split(".")[0]')"
[ "$major" -ge 20 ] || { say "node $(node --version) is too old: maas-ha needs Node.js >= 20"; exit 2; }

# ---- system packages (Debian 12)
pkgs=(postgresql-15 postgresql-15-pgpool2 pgpool2 openssh-server openssh-client iputils-arping iputils-ping iproute2 util-linux)
# the region controller VIP: the lab's bind9 and squid stand-ins, dig, the nftables fence, sudo for the hooks
pkgs+=(bind9 bind9-utils bind9-dnsutils squid nftables sudo)
# the tests: the Prometheus project's own text-format parser reads what `maas-ha metrics` writes (test/unit/metrics.test.ts)
pkgs+=(python3-prometheus-client)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  say "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  timeout 600 apt-get update -q >/dev/null
  timeout 1200 apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
  changed=1
else
  say "system packages: unchanged (${#pkgs[@]} present)"
fi

# ---- npm dependencies and the build
cd "$here"
if [ ! -d node_modules ] || [ package.json -nt node_modules/.package-lock.json ] || { [ -f package-lock.json ] && [ package-lock.json -nt node_modules/.package-lock.json ]; }; then
  say "installing npm dependencies"
  if [ -f package-lock.json ]; then timeout 900 npm ci --no-audit --no-fund --loglevel=error; else timeout 900 npm install --no-audit --no-fund --loglevel=error; fi
  changed=1
else
  say "npm dependencies: unchanged"
fi
if [ ! -f dist/.built ] || [ -n "$(find hooks lib pgpool build.mjs package-lock.json -newer dist/.built -print -quit)" ]; then
  say "building the hooks"
  timeout 300 node build.mjs >/dev/null
else
  say "build: unchanged"
fi

# ---- install the bundle (copy only what differs) and put the executables on PATH
install -d -m 755 "$libdir" "$libdir/dist" "$libdir/pgpool"
sync_dir() { # src dst
  local src="$1" dst="$2" f rel
  while IFS= read -r -d '' f; do
    rel="${f#"$src"/}"
    if ! cmp -s "$f" "$dst/$rel"; then
      install -D -m "$( [ -x "$f" ] && echo 755 || echo 644 )" "$f" "$dst/$rel"; changed=1
    fi
  done < <(find "$src" -type f -print0)
  # links (each extensionless executable is a relative link to its .mjs), kept as links
  while IFS= read -r -d '' f; do
    rel="${f#"$src"/}"
    if [ "$(readlink "$dst/$rel" 2>/dev/null)" != "$(readlink "$f")" ]; then
      mkdir -p "$(dirname "$dst/$rel")"; ln -sfn "$(readlink "$f")" "$dst/$rel"; changed=1
    fi
  done < <(find "$src" -type l -print0)
  # files and links the new build no longer has
  while IFS= read -r -d '' f; do
    rel="${f#"$dst"/}"
    [ -e "$src/$rel" ] || [ -L "$src/$rel" ] || { rm -f "$f"; changed=1; }
  done < <(find "$dst" \( -type f -o -type l \) -print0)
}
sync_dir "$here/dist/bin" "$libdir/dist/bin"
sync_dir "$here/pgpool" "$libdir/pgpool"
for exe in "$libdir"/dist/bin/maas-ha*; do
  case "$exe" in *.mjs) continue ;; esac
  link="$bindir/$(basename "$exe")"
  if [ "$(readlink "$link" 2>/dev/null)" != "$exe" ]; then ln -sfn "$exe" "$link"; changed=1; fi
done

# ---- production (--sudoers): what pgpool's VIP hooks may run as root, and nothing more. Rendered from the vip:
# section of the configuration (MAAS_HA_CONFIG or /etc/maas-ha/maas-ha.yaml) by the installed maas-ha; sudo only
# ever sees a file that `visudo -cf` accepted. The fence ruleset is root's file, so the drop-in can allow exactly
# `nft -f` of it. Unchanged files are left alone.
if [ "$sudoers" -eq 1 ]; then
  tmp="$(mktemp)"; trap 'rm -f "$tmp"' EXIT
  "$bindir/maas-ha" vip sudoers --user "${MAAS_HA_PGPOOL_USER:-postgres}" > "$tmp"
  visudo -cf "$tmp" >/dev/null || { say "the rendered sudoers drop-in does not pass visudo -cf; nothing installed"; exit 1; }
  if ! cmp -s "$tmp" /etc/sudoers.d/maas-ha; then install -m 440 -o root -g root "$tmp" /etc/sudoers.d/maas-ha; changed=1; say "wrote /etc/sudoers.d/maas-ha"; fi
  out="$("$bindir/maas-ha" vip fence-file --write)"; say "$out"
  case "$out" in wrote*) changed=1 ;; esac
  # Active-active (vip.mode): the services that answer on the VIP bind it before this host holds it, which the
  # kernel allows only with ip_nonlocal_bind (docs/maas.md, "Active-passive or active-active").
  if [ "$(timeout 30 "$bindir/maas-ha" config get vip.mode 2>/dev/null)" = active-active ]; then
    want="$(printf '# maas-ha: vip.mode active-active binds the VIP before this host holds it.\nnet.ipv4.ip_nonlocal_bind = 1')"
    if [ "$(cat "$sysctl_file" 2>/dev/null)" != "$want" ]; then
      printf '%s\n' "$want" > "$sysctl_file.tmp" && chmod 644 "$sysctl_file.tmp" && mv -f "$sysctl_file.tmp" "$sysctl_file"
      changed=1; say "wrote $sysctl_file"
    fi
    timeout 30 sysctl -q -p "$sysctl_file" || { say "could not apply $sysctl_file"; exit 1; }
  fi
fi

# ---- production (--database-host DATADIR): pgpool's online recovery runs "$PGDATA/recovery_1st_stage" and
# "$PGDATA/pgpool_remote_start" of whichever node is primary. The installed maas-ha writes both wrappers into this
# host's data directory (owned like it, mode 0700); they name the configuration (MAAS_HA_CONFIG or
# /etc/maas-ha/maas-ha.yaml, which must be valid) and this node binary, because a postmaster started over ssh
# passes neither on. pg_basebackup and pg_rewind copy them to every node rebuilt from this one.
for d in ${datadirs[@]+"${datadirs[@]}"}; do
  out="$("$bindir/maas-ha" recover install-scripts "$d")" || { say "could not write the recovery wrappers into $d"; exit 1; }
  while IFS= read -r l; do say "$l"; done <<< "$out"
  case "$out" in *written*) changed=1 ;; esac
done

# ---- the configuration, where there is one: checked (which also refreshes the checked copy the hooks start
# from), and its state_dir made for the user pgpool runs as: the hooks take their locks and keep their journal and
# fencing markers there, and that user cannot create a directory under /var/lib itself.
cfg="${cfg_arg:-${MAAS_HA_CONFIG:-/etc/maas-ha/maas-ha.yaml}}"
if [ -f "$cfg" ]; then
  out="$("$bindir/maas-ha" config check --config "$cfg" 2>&1)" || { say "$cfg is not valid:"; printf '%s\n' "$out"; exit 1; }
  state="$("$bindir/maas-ha" config get state_dir --config "$cfg")"
  user="${MAAS_HA_PGPOOL_USER:-postgres}"
  if [ ! -d "$state" ]; then
    [ ! -L "$state" ] || { say "$state is a symbolic link to nothing: not creating anything through it"; exit 1; }
    mkdir -p -- "$(dirname -- "$state")"
    # Not `install -d -o`: given a name someone planted a link at, it chowns and chmods the link's target. mkdir
    # fails on any name that appeared meanwhile, and chown -h changes only the directory mkdir made (or a link
    # swapped in after it, never that link's target).
    mkdir -m 700 -- "$state" && chown -h -- "$user:$user" "$state" || { say "could not create $state for $user"; exit 1; }
    changed=1; say "created $state for $user"
  fi
fi

# ---- production (--database-host DATADIR): the split-brain guard of that node (lib/guard, units rendered by
# lib/guard/units.ts). The failover's fence is a `pg_ctl stop` over ssh: it neither survives a reboot of the old
# primary's host nor reaches a primary hidden by a partition. So, when this host runs systemd:
#   - a drop-in for this cluster's postgresql@<version>-<cluster>.service whose ExecStartPre runs
#     `maas-ha-guard start-check`: a node whose cluster has a primary at least as new starts as a standby;
#   - maas-ha-guard.service, a long-running `maas-ha-guard watch` (every second, as postgres): a primary that sees
#     a peer on a newer timeline writes standby.signal and stops itself within 5 s.
# One maas-ha node per host (one PostgreSQL per region controller), hence one guard service. Unchanged units are
# left alone; a changed guard service is restarted. Without systemd nothing is installed, and the reason is said.
if [ "${#datadirs[@]}" -gt 0 ]; then
  if [ ! -d /run/systemd/system ]; then
    say "guard: this host does not run systemd (/run/systemd/system is missing): units not installed; run \"maas-ha-guard watch --data-directory DIR\" under your service manager and \"maas-ha-guard start-check --data-directory DIR\" before PostgreSQL starts"
  elif [ "${#datadirs[@]}" -gt 1 ]; then
    say "guard: one maas-ha node per host, got ${#datadirs[@]} data directories: units not installed"
  else
    guard_changed=0; guard_ok=1
    guard_unit() { # start-check|watch [--path]
      "$bindir/maas-ha-guard" unit "$1" --data-directory "${datadirs[0]}" --config "$cfg" \
        --bin "$libdir/dist/bin/maas-ha-guard" --nodejs "$(command -v node)" --user "${MAAS_HA_PGPOOL_USER:-postgres}" ${2:+"$2"}
    }
    for which in start-check watch; do
      set +e; path="$(guard_unit "$which" --path)"; rc=$?; set -e
      if [ "$rc" -eq 1 ] && [ "$which" = start-check ]; then say "guard: no ExecStartPre drop-in (the message above says why)"; continue; fi
      # e.g. several nodes share this data directory and none is this host: said above, and nothing is enabled
      [ "$rc" -eq 0 ] || { say "guard: could not render the $which unit: the guard is NOT installed"; guard_ok=0; break; }
      unit_tmp="$(mktemp)"
      guard_unit "$which" > "$unit_tmp" || { rm -f "$unit_tmp"; say "guard: could not render the $which unit: the guard is NOT installed"; guard_ok=0; break; }
      if ! cmp -s "$unit_tmp" "$path"; then
        install -D -m 644 -o root -g root "$unit_tmp" "$path"; changed=1; guard_changed=1; say "wrote $path"
      else
        say "$path: unchanged"
      fi
      rm -f "$unit_tmp"
    done
    if [ "$guard_changed" -eq 1 ]; then timeout 60 systemctl daemon-reload; fi
    if [ "$guard_ok" -eq 1 ]; then
      timeout 60 systemctl enable -q maas-ha-guard.service
      if [ "$guard_changed" -eq 1 ]; then timeout 60 systemctl restart maas-ha-guard.service; else timeout 60 systemctl start maas-ha-guard.service; fi
      say "guard: maas-ha-guard.service $(systemctl is-active maas-ha-guard.service 2>/dev/null || true)"
    fi
  fi
fi

if [ "$changed" -eq 1 ]; then say "installed maas-ha into $libdir (executables linked in $bindir)"; else say "nothing changed"; fi
