#!/usr/bin/env bash
# A throw-away one-node Slurm cluster (munge + slurmctld + slurmd) for tests, run as root on a
# Debian 12 machine without systemd (recipe: ../shared/notes/slurm-local.md).
#
#   tests/slurm/slurm-local.sh start    generate the config, start the daemons, wait for the node
#   tests/slurm/slurm-local.sh stop     cancel every job of this cluster, stop its daemons (idempotent)
#   tests/slurm/slurm-local.sh status   exit 0 when all three daemons of this cluster are running
#
# Everything lives in a state dir, $GDLAB_SLURM_DIR (default /tmp/gdlab-slurm): slurm.conf, a
# munge key and socket of its own, spool dirs (emptied at every start), logs and the PIDs of the
# daemons it started. Nothing under /etc, /run or /var is written, and an already running munged
# is left alone. Clients find the cluster through SLURM_CONF:
#
#   export SLURM_CONF=$GDLAB_SLURM_DIR/slurm.conf      (or: source $GDLAB_SLURM_DIR/env)
#
# Ports: $GDLAB_SLURMCTLD_PORT (6817) and $GDLAB_SLURMD_PORT (6818). If something already listens
# there (a slurmctld from elsewhere), start refuses with a clear message and touches nothing.
# (Two clusters on other ports work, but both number jobs from 1 and pmix names its directories
# /tmp/spmix_appdir_<uid>_<job>.<step>: do not run MPI jobs on both at once.)
# Daemons are stopped only by the PIDs this script recorded (never by name).
# Packages: slurmctld slurmd slurm-client munge tini (deploy/install-deps.sh).
set -euo pipefail

D=${GDLAB_SLURM_DIR:-/tmp/gdlab-slurm}
CTLD_PORT=${GDLAB_SLURMCTLD_PORT:-6817}
SLURMD_PORT=${GDLAB_SLURMD_PORT:-6818}
CONF=$D/slurm.conf
SOCK=$D/munge/munge.socket
PIDS=$D/pids
export SLURM_CONF=$CONF

say() { echo "slurm-local: $*" >&2; }
die() { say "ERROR: $*"; exit 1; }

# now_ms: a monotonic-enough clock for the bounded waits.
now_ms() { date +%s%3N; }

# is_alive PID: the process exists and is not a zombie (kill -0 succeeds on zombies).
is_alive() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [ "${stat%% *}" != Z ]
}

# start_time PID: field 22 of /proc/PID/stat, to tell a recorded PID from a reused one.
start_time() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  # after "comm) " the fields start at field 3; field 22 is the 20th of these
  local -a fields
  read -r -a fields <<< "$stat"
  echo "${fields[19]}"
}

# record NAME PID: remember a daemon we started (PID and its start time).
record() {
  local st
  st=$(start_time "$2" || echo 0)
  echo "$2 $st" > "$PIDS/$1"
}

# recorded_pid NAME: print the recorded PID if that very process is still alive.
recorded_pid() {
  local f=$PIDS/$1 pid st
  [ -s "$f" ] || return 1
  read -r pid st < "$f" || return 1
  [ -n "$pid" ] && is_alive "$pid" || return 1
  [ "$(start_time "$pid" 2>/dev/null)" = "$st" ] || return 1
  echo "$pid"
}

# wait_for SECONDS WHAT COMMAND...: poll COMMAND every 0.2 s until it succeeds or time runs out.
wait_for() {
  local limit=$1 what=$2 t0
  shift 2
  t0=$(now_ms)
  until "$@" >/dev/null 2>&1; do
    if [ $(( $(now_ms) - t0 )) -ge $(( limit * 1000 )) ]; then
      say "timeout after ${limit} s waiting for $what"
      return 1
    fi
    sleep 0.2
  done
  say "$what after $(( $(now_ms) - t0 )) ms"
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

munge_ok() { munge -n -S "$SOCK" </dev/null | unmunge -S "$SOCK" >/dev/null; }
ctld_ok() { scontrol ping 2>/dev/null | grep -q 'is UP'; }
node_idle() { [ "$(sinfo -h -n "$HOST" -o %T 2>/dev/null)" = idle ]; }

dump_logs() {
  say "---- sinfo -N -l"
  sinfo -N -l 2>&1 | sed 's/^/  /' >&2 || true
  for f in "$D"/munge/etc/munged.log "$D"/log/*.out "$D"/log/slurmctld.log "$D"/log/slurmd.log; do
    [ -s "$f" ] || continue
    say "---- last lines of $f"
    tail -n 25 "$f" | sed 's/^/  /' >&2
  done
}

# stop_daemon NAME: TERM the recorded PID, wait <= 15 s, KILL if needed, forget it.
stop_daemon() {
  local name=$1 pid t0 kids="" k
  if pid=$(recorded_pid "$name"); then
    # tini (slurmd's subreaper) also holds any slurmstepd that outlived slurmd: stop those too
    [ "$name" = slurmd ] && kids=$(pgrep -P "$pid" 2>/dev/null | tr '\n' ' ' || true)
    kill -TERM "$pid" 2>/dev/null || true
    t0=$(now_ms)
    while is_alive "$pid" && [ $(( $(now_ms) - t0 )) -lt 15000 ]; do sleep 0.1; done
    if is_alive "$pid"; then
      say "$name (pid $pid) ignored SIGTERM for 15 s: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.2
    fi
    for k in $kids; do
      if is_alive "$k"; then
        say "killing $(cat "/proc/$k/comm" 2>/dev/null || echo process) $k left behind by slurmd"
        kill -KILL "$k" 2>/dev/null || true
      fi
    done
    say "stopped $name (pid $pid) in $(( $(now_ms) - t0 )) ms"
  fi
  rm -f "$PIDS/$name"
}

cmd_stop() {
  [ -d "$PIDS" ] || { say "nothing to stop in $D"; return 0; }
  # 1. cancel every job of this cluster, so no slurmstepd or job process outlives slurmd
  if recorded_pid slurmctld >/dev/null && recorded_pid slurmd >/dev/null; then
    local jobs t0
    jobs=$(squeue -h -o %i 2>/dev/null | tr '\n' ' ' || true)
    if [ -n "${jobs// /}" ]; then
      say "cancelling jobs: $jobs"
      # shellcheck disable=SC2086
      scancel $jobs 2>/dev/null || true
      t0=$(now_ms)
      while [ -n "$(squeue -h -o %i 2>/dev/null)" ] && [ $(( $(now_ms) - t0 )) -lt 30000 ]; do
        sleep 0.2
      done
      [ -z "$(squeue -h -o %i 2>/dev/null)" ] || say "jobs still listed after 30 s: $(squeue -h -o '%i %T' | tr '\n' ' ')"
    fi
  fi
  # 2. slurmd (its tini) -> slurmctld -> munged
  stop_daemon slurmd
  stop_daemon slurmctld
  stop_daemon munged
  rm -f "$D"/run/*.pid "$D/munge/munged.pid"
}

cmd_status() {
  local n=0 name pid
  for name in munged slurmctld slurmd; do
    if pid=$(recorded_pid "$name"); then
      echo "$name: running (pid $pid)"; n=$((n + 1))
    else
      echo "$name: not running"
    fi
  done
  if [ "$n" -eq 3 ]; then
    echo "SLURM_CONF=$CONF"
    sinfo -N -h -o '%N %T %c CPUs' 2>/dev/null || true
    return 0
  fi
  return 1
}

write_conf() {
  local layout mem_kib
  # the CPU layout slurmd detects, without NodeName= and RealMemory= (slurm-local.md §4.5)
  layout=$(slurmd -C 2>/dev/null | head -n 1 | tr ' ' '\n' \
           | grep -E '^(CPUs|Boards|SocketsPerBoard|CoresPerSocket|ThreadsPerCore)=' | tr '\n' ' ')
  [ -n "$layout" ] || die "slurmd -C printed no CPU layout"
  mem_kib=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)
  cat > "$CONF" <<EOF
# Generated by tests/slurm/slurm-local.sh at $(date -Is); regenerated at every start.
ClusterName=gdlab
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# a requeued job is held for cred_expire seconds before it may start again (default 120)
AuthInfo=cred_expire=10,socket=$SOCK
MpiDefault=pmix
ProctrackType=proctrack/pgid
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
SchedulerParameters=bf_interval=1,sched_interval=2
ReturnToService=2
JobRequeue=1
StateSaveLocation=$D/spool/slurmctld
SlurmdSpoolDir=$D/spool/slurmd
SlurmctldPidFile=$D/run/slurmctld.pid
SlurmdPidFile=$D/run/slurmd.pid
SlurmctldLogFile=$D/log/slurmctld.log
SlurmdLogFile=$D/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
MailProg=/bin/true
KillWait=5
InactiveLimit=0
Waittime=0
MinJobAge=300
SlurmctldTimeout=30
SlurmdTimeout=30
NodeName=$HOST NodeAddr=127.0.0.1 ${layout}RealMemory=$(( mem_kib * 9 / 10 / 1024 )) State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF
  echo "export SLURM_CONF=$CONF" > "$D/env"
}

# EXIT trap while starting: a failure stops whatever was started.
on_start_exit() {
  local rc=$?
  if [ "$rc" -ne 0 ]; then
    dump_logs
    say "start failed: stopping what was started"
    cmd_stop
  fi
}

cmd_start() {
  local t_start missing=() c pid
  t_start=$(now_ms)
  [ "$(id -u)" -eq 0 ] || die "must run as root (SlurmUser=root, munged via setpriv)"
  for c in munged munge unmunge slurmctld slurmd scontrol sinfo squeue scancel tini setpriv; do
    command -v "$c" >/dev/null || missing+=("$c")
  done
  [ ${#missing[@]} -eq 0 ] || die "missing commands: ${missing[*]} (run deploy/install-deps.sh)"
  id munge >/dev/null 2>&1 || die "no 'munge' user (is the munge package installed?)"
  HOST=$(hostname -s)
  [ ${#SOCK} -lt 100 ] || die "state dir path too long for a unix socket: $D (set GDLAB_SLURM_DIR)"

  # Started before from this state dir and still up: stop it first (the note's "refuse to start twice").
  for c in munged slurmctld slurmd; do
    if recorded_pid "$c" >/dev/null; then
      say "a cluster from $D is still running: stopping it first"
      cmd_stop
      break
    fi
  done

  # Someone else's Slurm on this machine: say so and touch nothing.
  for c in "$CTLD_PORT" "$SLURMD_PORT"; do
    if port_in_use "$c"; then
      local others
      others=$(pgrep -a -x 'slurmctld|slurmd' 2>/dev/null | tr '\n' ';' || true)
      die "something already listens on 127.0.0.1:$c (another Slurm on this machine? ${others:-no slurmctld/slurmd process visible}).
  Refusing to start a second cluster. Stop that one, or set GDLAB_SLURMCTLD_PORT/GDLAB_SLURMD_PORT."
    fi
  done

  # State dir: munge files owned by munge, spool dirs emptied (no recovered jobs, job ids from 1).
  mkdir -p "$D" "$PIDS" "$D/run" "$D/log"
  rm -rf "$D/spool" "$D/munge"
  mkdir -p "$D/spool/slurmctld" "$D/spool/slurmd" "$D/munge/etc"
  chmod 0700 "$D/spool/slurmctld" "$D/spool/slurmd"
  rm -f "$D"/log/*
  head -c 1024 /dev/urandom > "$D/munge/etc/munge.key"
  chown -R munge:munge "$D/munge"
  chmod 0755 "$D/munge"
  chmod 0700 "$D/munge/etc"
  chmod 0400 "$D/munge/etc/munge.key"
  write_conf

  # From here on, a failure stops whatever was started.
  trap on_start_exit EXIT

  # munged, as user munge; setpriv execs without forking, so $! is munged itself
  setpriv --reuid=munge --regid=munge --init-groups \
    munged -F --socket="$SOCK" --key-file="$D/munge/etc/munge.key" \
      --pid-file="$D/munge/munged.pid" --seed-file="$D/munge/etc/munged.seed" \
      --log-file="$D/munge/etc/munged.log" \
    </dev/null >"$D/log/munged.out" 2>&1 &
  record munged $!
  wait_for 20 "munged answering" munge_ok

  slurmctld -D -f "$CONF" </dev/null >"$D/log/slurmctld.out" 2>&1 &
  record slurmctld $!
  wait_for 30 "slurmctld answering" ctld_ok

  # slurmd under tini, a subreaper: otherwise zombies in the job's process group delay every job
  # end by ~3 s (proctrack/pgid, slurm-local.md pitfall 2)
  tini -s -g -- slurmd -D -f "$CONF" </dev/null >"$D/log/slurmd.out" 2>&1 &
  record slurmd $!
  wait_for 60 "node $HOST idle" node_idle

  trap - EXIT
  say "cluster up in $(( $(now_ms) - t_start )) ms; export SLURM_CONF=$CONF"
  for c in munged slurmctld slurmd; do
    pid=$(recorded_pid "$c") || die "$c died right after start"
  done
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  *) echo "usage: $0 start|stop|status   (state dir: \$GDLAB_SLURM_DIR, now $D)" >&2; exit 2 ;;
esac
