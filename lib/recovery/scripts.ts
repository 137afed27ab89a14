// The shell maas-ha runs on a database host to rebuild a node, as constants: every value (paths, conninfo
// lines, the pg_rewind/pg_basebackup argv) reaches a script as a positional parameter, never as script text
// (the rule of lib/pgctl.ts's shScript). Each script does one ssh round trip's worth of work and reports what
// it did as `key=value` lines on stdout, so the caller can tell "the copy failed" from "the swap failed".
//
// They run as the PostgreSQL user (ssh as postgres), under dash on Debian: POSIX sh only.

/** Configuration files that belong to the node, not to the copy's source: restored after pg_rewind and copied
 *  into a base backup (pg_basebackup and pg_rewind bring the primary's). The two recovery wrappers come from the
 *  primary (every node needs them, docs/lab.md, "Recovery wrappers live in every data directory"); the node's own are kept only if the copy lacks them. Besides
 *  these, every file the node's configuration includes from its data directory (lib/recovery/includes.ts) is kept:
 *  `$keep` lists them, one `f:REL` (a file) or `d:REL` (the *.conf files of an include_dir) per line.
 *
 *  Bounds: killing the local ssh does not stop a remote command, so every command that can take long (a copy, a
 *  sync, a recursive delete, du, df, pg_controldata, pg_rewind, pg_basebackup) runs under coreutils timeout(1),
 *  bounded by what is left of the caller's budget: each script sets \`deadline\` from a positional parameter. */
const FUNCTIONS = `
PRESERVE='postgresql.conf pg_hba.conf pg_ident.conf postgresql.auto.conf'
WRAPPERS='recovery_1st_stage pgpool_remote_start'
keep=""
set_deadline() {
  case "$1" in ''|*[!0-9]*) echo "not a number of seconds: $1" >&2; return 1 ;; esac
  deadline=$(( $(date +%s) + $1 ))
}
# The command, killed (TERM, then KILL 5 s later) when the deadline passes; 124 when it did.
run() {
  left=$(( deadline - $(date +%s) ))
  if [ "$left" -lt 1 ]; then echo "out of time before $1" >&2; return 124; fi
  timeout -k 5 "$left" "$@"
}
# Undoing a step must happen even when the deadline has passed (that is often why it failed): its own short bound.
undo() { timeout -k 5 20 "$@"; }
# $1 from, $2 to, $3 f:REL or d:REL. A file the source lacks is removed from the destination: the copy's source
# may have one of that name (the primary's node.conf), which the node's configuration would then include.
copy_own() {
  rel="\${3#?:}"
  case "$rel" in ''|/*|..|../*|*/..|*/../*) echo "refusing to copy configuration path $rel" >&2; return 1 ;; esac
  case "$3" in
    f:*)
      if [ -f "$1/$rel" ]; then
        run mkdir -p "$(dirname "$2/$rel")" && run cp -p "$1/$rel" "$2/$rel"
      elif [ -f "$2/$rel" ]; then
        run rm -f "$2/$rel"
      fi ;;
    d:*)
      for x in "$2/$rel"/*.conf; do if [ -f "$x" ]; then run rm -f "$x" || return 1; fi; done
      if [ -d "$1/$rel" ]; then
        run mkdir -p "$2/$rel" || return 1
        for x in "$1/$rel"/*.conf; do if [ -f "$x" ]; then run cp -p "$x" "$2/$rel/" || return 1; fi; done
      fi ;;
    *) echo "unknown configuration path $3" >&2; return 1 ;;
  esac
}
each_own() {
  [ -n "$keep" ] || return 0
  while IFS= read -r e; do
    if [ -n "$e" ]; then copy_own "$1" "$2" "$e" < /dev/null || return 1; fi
  done <<EOF_KEEP
$keep
EOF_KEEP
}
# Saved once: a save that an earlier attempt completed (.maas-ha-complete) holds the node's files from before any
# pg_rewind touched them, and is kept; an incomplete one is made again from the data directory, still untouched.
save_conf() {
  if [ -f "$2/.maas-ha-complete" ]; then echo saved_earlier=1; return 0; fi
  run rm -rf "$2" && mkdir -m 700 "$2" || return 1
  for f in $PRESERVE $WRAPPERS; do if [ -f "$1/$f" ]; then run cp -p "$1/$f" "$2/$f" || return 1; fi; done
  each_own "$1" "$2" || return 1
  : > "$2/.maas-ha-complete"
}
restore_conf() {
  for f in $PRESERVE; do if [ -f "$1/$f" ]; then run cp -p "$1/$f" "$2/$f" || return 1; fi; done
  for f in $WRAPPERS; do if [ -f "$1/$f" ] && [ ! -f "$2/$f" ]; then run cp -p "$1/$f" "$2/$f" || return 1; fi; done
  each_own "$1" "$2"
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
  printf '%s' "$lines" >> "$tmp" && chmod 600 "$tmp" && run mv "$tmp" "$f" && : > "$1/standby.signal"
}
take_lines() {
  lines=""; n="$1"; shift
  while [ "$n" -gt 0 ]; do lines="$lines$1
"; shift; n=$((n - 1)); done
}
# After the standby lines, optionally: --keep M, then M f:REL/d:REL entries (the caller shifts M + 2).
take_keep() {
  keep=""; n="$2"; shift 2
  while [ "$n" -gt 0 ]; do keep="$keep$1
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
 * `$1` data directory, `$2` PostgreSQL bin directory, `$3` 1 to measure the data directory (du), `$4` seconds the
 * whole script may take (default 60), `$5` the node's main configuration file (default `$1/postgresql.conf`).
 * Reports what the planner needs (lib/recovery/plan.ts parseTargetDisk); writes nothing but a probe file.
 * "Writable" is tested by creating a file, which catches a read-only filesystem as well as a wrong owner.
 * `include:` lines are the include directives of the node's configuration files (lib/recovery/includes.ts).
 */
export const FACTS_SCRIPT = `${FUNCTIONS}
d="$1"; bin="$2"; new="$d.maas-ha-new"; parent=$(dirname "$d"); conf="\${5:-$d/postgresql.conf}"
set_deadline "\${4:-60}" || exit 2
kv() { printf '%s=%s\\n' "$1" "$2"; }
probe() { f="$1/.maas-ha-probe.$$"; if run touch "$f" 2>/dev/null; then run rm -f "$f"; echo 1; else echo 0; fi; }
includes() {
  if [ -f "$1" ]; then
    run grep -i -E '^[[:space:]]*include(_if_exists|_dir)?([[:space:]]|=|$)' "$1" 2>/dev/null | while IFS= read -r l; do printf 'include: %s\\t%s\\n' "$1" "$l"; done
  fi
}
if [ -d "$d" ]; then
  kv datadir 1
  # ls cut short by the deadline says nothing: "not empty", which keeps the directory (it is moved aside, never removed).
  if listing=$(run ls -A "$d" 2>/dev/null) && [ -z "$listing" ]; then kv empty 1; else kv empty 0; fi
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
  kv free_kb "$(run df -Pk "$parent" 2>/dev/null | awk 'NR == 2 { print $4 }')"
fi
for o in "$d".maas-ha-old-*; do if [ -d "$o" ]; then kv old "$o"; fi; done
if [ -d "$d" ]; then
  includes "$conf"
  includes "$d/postgresql.auto.conf"
  run find "$d" -maxdepth 2 -type f -name '*.conf' 2>/dev/null | while IFS= read -r f; do includes "$f" < /dev/null; done
fi
if [ -f "$d/PG_VERSION" ]; then run "$bin/pg_controldata" -D "$d" 2>&1 | sed 's/^/control: /'; fi
# Last: the one step that may take long on a large directory must not eat the time of the others.
if [ "$3" = 1 ] && [ -d "$d" ]; then kv size_kb "$(run du -sk "$d" 2>/dev/null | cut -f1)"; fi
exit 0`;

/**
 * `$1` data directory, `$2` seconds the whole script may take (pg_rewind included), `$3` N, then N standby lines,
 * then optionally `--keep M` and M included configuration paths (f:REL / d:REL), then the pg_rewind argv.
 * Saves the node's own configuration files beside the data directory, rewinds in place, drops the replication
 * slots the node had as a primary (a standby would retain WAL for them forever), restores the configuration
 * files, writes the standby settings. Exit 10: pg_rewind itself failed (its words on stderr).
 *
 * A crashed standby (standby.signal, not shut down cleanly) makes pg_rewind (PG 13+) run crash recovery in
 * single-user mode, which refuses standby mode ("FATAL: standby mode is not supported by single-user servers"):
 * standby.signal waits in the saved directory during pg_rewind, goes back if it fails, and is written anew
 * (write_standby) when it succeeds.
 */
export const REWIND_SCRIPT = `${FUNCTIONS}
d="$1"; secs="$2"; shift 2; take_lines "$@"; shift $(( $1 + 1 ))
if [ "$1" = --keep ]; then take_keep "$@"; shift $(( $2 + 2 )); fi
set_deadline "$secs" || exit 2
save="$d.maas-ha-conf"
save_conf "$d" "$save" || { echo "cannot save the node's configuration files to $save" >&2; exit 3; }
echo stage=saved
if [ -f "$d/standby.signal" ]; then
  run mv "$d/standby.signal" "$save/standby.signal" || { echo "cannot move $d/standby.signal aside for pg_rewind" >&2; exit 3; }
fi
run "$@"; rc=$?
if [ "$rc" -ne 0 ]; then
  if [ -f "$save/standby.signal" ] && [ ! -f "$d/standby.signal" ]; then undo mv "$save/standby.signal" "$d/standby.signal"; fi
  [ "$rc" -eq 124 ] && echo "pg_rewind did not finish within $secs s" >&2
  echo "stage=rewind-failed rc=$rc"; exit 10
fi
# pg_rewind ran with --no-sync: one syncfs instead of its fsync of every file (see BASEBACKUP_SCRIPT).
run sync -f "$d" || { echo "cannot sync $d to disk" >&2; exit 4; }
echo stage=rewound
if [ -d "$d/pg_replslot" ]; then run find "$d/pg_replslot" -mindepth 1 -maxdepth 1 -exec rm -rf {} + || exit 4; fi
restore_conf "$save" "$d" || { echo "cannot restore the node's configuration files from $save" >&2; exit 4; }
write_standby "$d" || { echo "cannot write the standby settings into $d" >&2; exit 4; }
run rm -rf "$save" "$d.maas-ha-basebackup.log"
echo stage=done`;

/**
 * `$1` data directory, `$2` seconds the script may take, `$3` N, then N standby lines. A stopped standby that
 * only needs starting (lib/recovery/plan.ts): its standby settings are rewritten to name the current primary.
 */
export const STANDBY_CONF_SCRIPT = `${FUNCTIONS}
d="$1"; secs="$2"; shift 2; take_lines "$@"
set_deadline "$secs" || exit 2
if alive "$d"; then echo "a postmaster (pid $pid) runs on $d: not touching its settings" >&2; exit 6; fi
[ -f "$d/standby.signal" ] || { echo "$d has no standby.signal: not a standby" >&2; exit 5; }
write_standby "$d" || { echo "cannot write the standby settings into $d" >&2; exit 4; }
echo stage=done`;

/**
 * `$1` data directory, `$2` where it goes when replaced, `$3` seconds the whole script may take (the copy
 * included), `$4` log file, `$5` N, then N standby lines, then optionally `--keep M` and M included configuration
 * paths, then the pg_basebackup argv (whose -D is `$1.maas-ha-new`).
 * Copies beside, completes the copy (the node's own configuration files, standby settings, standby.signal last),
 * then swaps by rename, after checking once more that no postmaster runs on the data directory. The old data
 * directory is only ever renamed. Exit 10: the copy failed (the unfinished copy is removed; the data directory was
 * not touched). Exit 6: a postmaster runs on the data directory (the complete copy is left beside it).
 * The node's configuration comes from `$1.maas-ha-conf` when a failed pg_rewind saved it there (pg_rewind may
 * have overwritten the files in the data directory), else from the data directory.
 */
export const BASEBACKUP_SCRIPT = `${FUNCTIONS}
d="$1"; old="$2"; secs="$3"; log="$4"; shift 4; take_lines "$@"; shift $(( $1 + 1 ))
if [ "$1" = --keep ]; then take_keep "$@"; shift $(( $2 + 2 )); fi
set_deadline "$secs" || exit 2
new="$d.maas-ha-new"; save="$d.maas-ha-conf"
if [ -e "$new" ]; then run rm -rf "$new" || { echo "cannot remove the unfinished copy $new" >&2; exit 3; }; fi
echo stage=copying
run "$@" 2> "$log"; rc=$?
if [ "$rc" -ne 0 ]; then
  [ "$rc" -eq 124 ] && echo "pg_basebackup did not finish within $secs s" >&2
  tr '\\r' '\\n' < "$log" | grep -v -E '^[[:space:]]*[0-9]+/[0-9]+ kB' | grep -v '^$' | tail -n 4 >&2
  undo rm -rf "$new"
  echo "stage=copy-failed rc=$rc"; exit 10
fi
# pg_basebackup ran with --no-sync: one syncfs of the filesystem makes the copy durable before it replaces anything,
# much faster than pg_basebackup's own fsync of every file (PostgreSQL's recovery_init_sync_method = syncfs relies
# on the same call). The copy is only swapped in once it is on disk.
run sync -f "$new" || { echo "cannot sync $new to disk" >&2; undo rm -rf "$new"; exit 4; }
echo stage=copied
from="$d"; if [ -f "$save/.maas-ha-complete" ]; then from="$save"; fi
if [ -d "$from" ]; then restore_conf "$from" "$new" || { echo "cannot copy the node's configuration files into $new" >&2; exit 4; }; fi
write_standby "$new" || { echo "cannot write the standby settings into $new" >&2; exit 4; }
chmod 700 "$new" || exit 4
# Checked again right before the rename: a postmaster started during the copy owns the data directory.
if alive "$d"; then
  echo "a postmaster (pid $pid) runs on $d: not swapping; the complete copy stays at $new; stop it, then retry" >&2
  exit 6
fi
if [ -d "$d" ]; then
  if [ -z "$(run ls -A "$d")" ]; then
    rmdir "$d" || exit 5
  else
    # Two rebuilds within one second would pick the same name, and mv into an existing directory nests.
    while [ -e "$old" ]; do old="$old-1"; done
    run mv "$d" "$old" || { echo "cannot rename $d to $old" >&2; exit 5; }
    echo "old=$old"
  fi
fi
if ! run mv "$new" "$d"; then
  echo "cannot rename $new to $d" >&2
  if [ -d "$old" ] && [ ! -e "$d" ]; then undo mv "$old" "$d"; fi
  exit 5
fi
echo stage=swapped
# The save a failed pg_rewind left is used up; pg_basebackup's log stays until the node streams (settle's tidy).
run rm -rf "$save"
exit 0`;

/** `$1` data directory, `$2` seconds it may take (default 30): finishes the swap an interrupted attempt left (the
 *  copy is complete, the directory gone). */
export const RESUME_SCRIPT = `${FUNCTIONS}
d="$1"; new="$d.maas-ha-new"
set_deadline "\${2:-30}" || exit 2
[ -e "$d" ] && { echo "$d exists again: not swapping" >&2; exit 5; }
run mv "$new" "$d" || exit 5
echo stage=swapped
run rm -rf "$d.maas-ha-conf" "$d.maas-ha-basebackup.log"
exit 0`;

/** Optionally `--bound SECONDS` (default 300), optionally `--tidy DATADIR` (the node streams: remove what its
 *  rebuild left beside it, pg_basebackup's log and a saved configuration), then `$@` replaced data directories to
 *  delete; anything not named like one is refused. */
export const PRUNE_SCRIPT = `${FUNCTIONS}
b=300; if [ "$1" = --bound ]; then b="$2"; shift 2; fi
set_deadline "$b" || exit 2
if [ "$1" = --tidy ]; then
  run rm -rf "$2.maas-ha-basebackup.log" "$2.maas-ha-conf" || exit 1
  shift 2
fi
for p in "$@"; do
  case "$p" in
    *.maas-ha-old-*) run rm -rf "$p" || exit 1; echo "pruned=$p" ;;
    *) echo "refusing to delete $p: not a replaced data directory" >&2; exit 2 ;;
  esac
done`;

/** Where the per-node rebuild lock lives: beside the data directory, on the database host. */
export const rebuildLockOf = (dataDir: string) => `${dataDir}.maas-ha-rebuild.lock`;

/**
 * `$1` data directory, `$2` run id, `$3` seconds the run may hold the lock (its budget). One rebuild per node at a
 * time: two would stop, copy and swap over each other (a second pg_basebackup's `rm -rf` of the first's copy).
 * The lock is a symbolic link whose target carries its owner (`run=ID since=EPOCH until=EPOCH`): created with
 * its content in one atomic step. A lock past its `until` is stale (its run died): it is renamed aside (atomic;
 * only one contender gets that very link), checked to be the one judged stale, and taken.
 * Prints `locked=ID`, `took_over=OWNER` or, exit 3, `held=OWNER`.
 */
export const LOCK_SCRIPT = `
d="$1"; id="$2"; hold="$3"; lock="$d.maas-ha-rebuild.lock"
case "$hold" in ''|*[!0-9]*) echo "not a number of seconds: $hold" >&2; exit 2 ;; esac
field() { printf '%s\\n' "$held" | sed -n "s/.*$1=\\([^ ]*\\).*/\\1/p"; }
i=0
while [ "$i" -lt 5 ]; do
  i=$((i + 1))
  now=$(date +%s)
  if ln -s "run=$id since=$now until=$((now + hold))" "$lock" 2>/dev/null; then echo "locked=$id"; exit 0; fi
  held=$(readlink "$lock" 2>/dev/null) || continue
  if [ "$(field run)" = "$id" ]; then echo "locked=$id"; exit 0; fi
  until=$(field until)
  case "$until" in ''|*[!0-9]*) until=0 ;; esac
  if [ "$until" -gt "$now" ]; then echo "held=$held"; exit 3; fi
  aside="$lock.stale.$$"
  mv "$lock" "$aside" 2>/dev/null || continue
  if [ "$(readlink "$aside")" = "$held" ]; then
    rm -f "$aside"; echo "took_over=$held"
  else
    # Another run took it over in between: give its lock back, then look again.
    ln -s "$(readlink "$aside")" "$lock" 2>/dev/null; rm -f "$aside"
  fi
done
echo "held=$(readlink "$lock" 2>/dev/null)"; exit 3`;

/** `$1` data directory, `$2` run id: removes the rebuild lock if this run holds it. */
export const UNLOCK_SCRIPT = `
lock="$1.maas-ha-rebuild.lock"
held=$(readlink "$lock" 2>/dev/null) || { echo unlocked=absent; exit 0; }
case "$held" in
  "run=$2 "*) rm -f "$lock" && echo unlocked=1 ;;
  *) echo "held=$held" ;;
esac
exit 0`;

/** `$1` data directory, `$2` seconds it may take (default 20): how far a running base backup is (size of the
 *  copy, pg_basebackup's last progress line). */
export const PROGRESS_SCRIPT = `${FUNCTIONS}
d="$1"; new="$d.maas-ha-new"; log="$d.maas-ha-basebackup.log"
set_deadline "\${2:-20}" || exit 2
if [ -d "$new" ]; then
  printf 'new_kb=%s\\n' "$(run du -sk "$new" 2>/dev/null | cut -f1)"
  # WAL segments are created at full size (16 MB) before they fill: not a measure of the copy.
  if [ -d "$new/pg_wal" ]; then printf 'wal_kb=%s\\n' "$(run du -sk "$new/pg_wal" 2>/dev/null | cut -f1)"; fi
  if [ -f "$log" ]; then tail -c 4096 "$log" | tr '\\r' '\\n' | grep -E '[0-9]+/[0-9]+ kB' | tail -n 1 | sed 's/^/progress=/'; fi
fi
exit 0`;

/** `$1` a PostgreSQL server log: maas-ha's recovery hook lines at level error, for the operator. */
export const LOG_REASON_SCRIPT = `
tail -c 262144 "$1" 2>/dev/null | grep -E '"hook":"(recovery_1st_stage|remote_start)"' | grep '"level":"error"' | tail -n 5
exit 0`;
