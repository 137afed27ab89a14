// The shell maas-ha runs on a database host to rebuild a node, as constants: every value (paths, conninfo
// lines, the pg_rewind/pg_basebackup argv) reaches a script as a positional parameter, never as script text
// (the rule of lib/pgctl.ts's shScript). Each script does one ssh round trip's worth of work and reports what
// it did as `key=value` lines on stdout, so the caller can tell "the copy failed" from "the swap failed".
//
// They run as the PostgreSQL user (ssh as postgres), under dash on Debian: POSIX sh only.

/** Configuration files that belong to the node, not to the copy's source: restored after pg_rewind and copied
 *  into a base backup (pg_basebackup and pg_rewind bring the primary's). The two recovery wrappers come from the
 *  primary (every node needs them, lab-recipe G16); the node's own are kept only if the copy lacks them. */
const FUNCTIONS = `
PRESERVE='postgresql.conf pg_hba.conf pg_ident.conf postgresql.auto.conf'
WRAPPERS='recovery_1st_stage pgpool_remote_start'
save_conf() {
  rm -rf "$2" && mkdir -m 700 "$2" || return 1
  for f in $PRESERVE $WRAPPERS; do if [ -f "$1/$f" ]; then cp -p "$1/$f" "$2/$f" || return 1; fi; done
}
restore_conf() {
  for f in $PRESERVE; do if [ -f "$1/$f" ]; then cp -p "$1/$f" "$2/$f" || return 1; fi; done
  for f in $WRAPPERS; do if [ -f "$1/$f" ] && [ ! -f "$2/$f" ]; then cp -p "$1/$f" "$2/$f" || return 1; fi; done
}
# postgresql.auto.conf without the standby settings and synchronous_standby_names, plus ours; then
# standby.signal, last: in a copy beside the data directory it marks the copy complete.
write_standby() {
  f="$1/postgresql.auto.conf"; tmp="$1/postgresql.auto.conf.maas-ha"
  if [ -f "$f" ]; then
    grep -v -E '^[[:space:]]*(primary_conninfo|primary_slot_name|recovery_target_timeline|synchronous_standby_names)[[:space:]]*=' "$f" > "$tmp"
    [ $? -le 1 ] || return 1
  else
    : > "$tmp" || return 1
  fi
  printf '%s' "$lines" >> "$tmp" && chmod 600 "$tmp" && mv "$tmp" "$f" && : > "$1/standby.signal"
}
take_lines() {
  lines=""; n="$1"; shift
  while [ "$n" -gt 0 ]; do lines="$lines$1
"; shift; n=$((n - 1)); done
}
alive() {
  pid=$(head -n 1 "$1/postmaster.pid" 2>/dev/null) || return 1
  [ -n "$pid" ] || return 1
  st=$(ps -o stat= -p "$pid" 2>/dev/null) || return 1
  case "$st" in Z*|"") return 1 ;; esac
}
`;

/**
 * `$1` data directory, `$2` PostgreSQL bin directory, `$3` 1 to measure the data directory (du).
 * Reports what the planner needs (lib/recovery/plan.ts parseTargetDisk); writes nothing but a probe file.
 * "Writable" is tested by creating a file, which catches a read-only filesystem as well as a wrong owner.
 */
export const FACTS_SCRIPT = `${FUNCTIONS}
d="$1"; bin="$2"; new="$d.maas-ha-new"; parent=$(dirname "$d")
kv() { printf '%s=%s\\n' "$1" "$2"; }
probe() { f="$1/.maas-ha-probe.$$"; if ( : > "$f" ) 2>/dev/null; then rm -f "$f"; echo 1; else echo 0; fi; }
if [ -d "$d" ]; then
  kv datadir 1
  if [ -z "$(ls -A "$d" 2>/dev/null)" ]; then kv empty 1; else kv empty 0; fi
  kv writable "$(probe "$d")"
else
  kv datadir 0
fi
if [ -f "$d/PG_VERSION" ]; then kv pg_version "$(cat "$d/PG_VERSION")"; fi
if alive "$d"; then kv running 1; else kv running 0; fi
if [ -f "$d/standby.signal" ]; then kv standby_signal 1; fi
if [ -d "$new" ]; then
  kv new 1
  if [ -f "$new/PG_VERSION" ] && [ -f "$new/standby.signal" ]; then kv new_complete 1; fi
fi
if [ -d "$parent" ]; then
  kv parent 1
  kv parent_writable "$(probe "$parent")"
  kv free_kb "$(df -Pk "$parent" 2>/dev/null | awk 'NR == 2 { print $4 }')"
fi
for o in "$d".maas-ha-old-*; do if [ -d "$o" ]; then kv old "$o"; fi; done
if [ "$3" = 1 ] && [ -d "$d" ]; then kv size_kb "$(du -sk "$d" 2>/dev/null | cut -f1)"; fi
if [ -f "$d/PG_VERSION" ]; then "$bin/pg_controldata" -D "$d" 2>&1 | sed 's/^/control: /'; fi
exit 0`;

/**
 * `$1` data directory, `$2` seconds pg_rewind may take, `$3` N, then N standby lines, then the pg_rewind argv.
 * Saves the node's own configuration files beside the data directory, rewinds in place, drops the replication
 * slots the node had as a primary (a standby would retain WAL for them forever), restores the configuration
 * files, writes the standby settings. Exit 10: pg_rewind itself failed (its words on stderr).
 */
export const REWIND_SCRIPT = `${FUNCTIONS}
d="$1"; secs="$2"; shift 2; take_lines "$@"; shift $(( $1 + 1 ))
save="$d.maas-ha-conf"
save_conf "$d" "$save" || { echo "cannot save the node's configuration files to $save" >&2; exit 3; }
echo stage=saved
timeout -k 5 "$secs" "$@"; rc=$?
if [ "$rc" -ne 0 ]; then echo "stage=rewind-failed rc=$rc"; exit 10; fi
# pg_rewind ran with --no-sync: one syncfs instead of its fsync of every file (see BASEBACKUP_SCRIPT).
sync -f "$d" || { echo "cannot sync $d to disk" >&2; exit 4; }
echo stage=rewound
if [ -d "$d/pg_replslot" ]; then find "$d/pg_replslot" -mindepth 1 -maxdepth 1 -exec rm -rf {} + || exit 4; fi
restore_conf "$save" "$d" || { echo "cannot restore the node's configuration files from $save" >&2; exit 4; }
write_standby "$d" || { echo "cannot write the standby settings into $d" >&2; exit 4; }
rm -rf "$save"
echo stage=done`;

/**
 * `$1` data directory, `$2` where it goes when replaced, `$3` seconds the copy may take, `$4` log file, `$5` N,
 * then N standby lines, then the pg_basebackup argv (whose -D is `$1.maas-ha-new`).
 * Copies beside, completes the copy (the node's own configuration files, standby settings, standby.signal last),
 * then swaps by rename. The old data directory is only ever renamed. Exit 10: the copy failed (the unfinished
 * copy is removed; the data directory was not touched).
 */
export const BASEBACKUP_SCRIPT = `${FUNCTIONS}
d="$1"; old="$2"; secs="$3"; log="$4"; shift 4; take_lines "$@"; shift $(( $1 + 1 ))
new="$d.maas-ha-new"
if [ -e "$new" ]; then rm -rf "$new" || { echo "cannot remove the unfinished copy $new" >&2; exit 3; }; fi
echo stage=copying
timeout -k 5 "$secs" "$@" 2> "$log"; rc=$?
if [ "$rc" -ne 0 ]; then
  [ "$rc" -eq 124 ] && echo "pg_basebackup did not finish within $secs s" >&2
  tr '\\r' '\\n' < "$log" | grep -v -E '^[[:space:]]*[0-9]+/[0-9]+ kB' | grep -v '^$' | tail -n 4 >&2
  rm -rf "$new"
  echo "stage=copy-failed rc=$rc"; exit 10
fi
# pg_basebackup ran with --no-sync: one syncfs of the filesystem makes the copy durable before it replaces anything,
# much faster than pg_basebackup's own fsync of every file (PostgreSQL's recovery_init_sync_method = syncfs relies
# on the same call). The copy is only swapped in once it is on disk.
sync -f "$new" || { echo "cannot sync $new to disk" >&2; rm -rf "$new"; exit 4; }
echo stage=copied
if [ -d "$d" ]; then restore_conf "$d" "$new" || { echo "cannot copy the node's configuration files into $new" >&2; exit 4; }; fi
write_standby "$new" || { echo "cannot write the standby settings into $new" >&2; exit 4; }
chmod 700 "$new" || exit 4
if [ -d "$d" ]; then
  if [ -z "$(ls -A "$d")" ]; then
    rmdir "$d" || exit 5
  else
    # Two rebuilds within one second would pick the same name, and mv into an existing directory nests.
    while [ -e "$old" ]; do old="$old-1"; done
    mv "$d" "$old" || { echo "cannot rename $d to $old" >&2; exit 5; }
    echo "old=$old"
  fi
fi
if ! mv "$new" "$d"; then
  echo "cannot rename $new to $d" >&2
  if [ -d "$old" ] && [ ! -e "$d" ]; then mv "$old" "$d"; fi
  exit 5
fi
echo stage=swapped`;

/** `$1` data directory: finishes the swap an interrupted attempt left (the copy is complete, the directory gone). */
export const RESUME_SCRIPT = `
d="$1"; new="$d.maas-ha-new"
[ -e "$d" ] && { echo "$d exists again: not swapping" >&2; exit 5; }
mv "$new" "$d" || exit 5
echo stage=swapped`;

/** `$@` replaced data directories to delete; anything not named like one is refused. */
export const PRUNE_SCRIPT = `
for p in "$@"; do
  case "$p" in
    *.maas-ha-old-*) rm -rf "$p" || exit 1; echo "pruned=$p" ;;
    *) echo "refusing to delete $p: not a replaced data directory" >&2; exit 2 ;;
  esac
done`;

/** `$1` data directory: how far a running base backup is (size of the copy, pg_basebackup's last progress line). */
export const PROGRESS_SCRIPT = `
d="$1"; new="$d.maas-ha-new"; log="$d.maas-ha-basebackup.log"
if [ -d "$new" ]; then
  printf 'new_kb=%s\\n' "$(du -sk "$new" 2>/dev/null | cut -f1)"
  # WAL segments are created at full size (16 MB) before they fill: not a measure of the copy.
  if [ -d "$new/pg_wal" ]; then printf 'wal_kb=%s\\n' "$(du -sk "$new/pg_wal" 2>/dev/null | cut -f1)"; fi
  if [ -f "$log" ]; then tail -c 4096 "$log" | tr '\\r' '\\n' | grep -E '[0-9]+/[0-9]+ kB' | tail -n 1 | sed 's/^/progress=/'; fi
fi
exit 0`;

/** `$1` a PostgreSQL server log: maas-ha's recovery hook lines at level error, for the operator. */
export const LOG_REASON_SCRIPT = `
tail -c 262144 "$1" 2>/dev/null | grep -E '"hook":"(recovery_1st_stage|remote_start)"' | grep '"level":"error"' | tail -n 5
exit 0`;
