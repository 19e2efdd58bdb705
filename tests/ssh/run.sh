#!/usr/bin/env bash
# The modules over SSH against a managed host, as infra repos run them: an sshd of our own on
# 127.0.0.1 (a throwaway host key, a free high port, only MANAGED_USER with a throwaway key),
# then tests/ssh/managed_host.yml with tests/ssh/inventory.yml. Called by ./dev (ssh step),
# which installs openssh-server (bindep.txt), makes MANAGED_USER and finds a python it can run.
#   run.sh MANAGED_USER MANAGED_PYTHON [ansible-playbook options...]
# Needs root or sudo (sshd, the user's ~/.ssh); ansible-playbook runs as the caller.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
user=$1 python=$2
shift 2

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

home=$(getent passwd "$user" | cut -d: -f6) || true
case "$home" in
    /?*) ;;
    *) echo "$user has no home folder of its own (getent passwd: '$home')" >&2; exit 1 ;;
esac
work=$(mktemp -d)  # owner-only: the keys, sshd's config and pid, the ssh control sockets
started=""
# The managed user's QEMU processes still running (pid, state, command): a zombie has ended and
# only waits for its parent to reap it; where PID 1 does not reap (some CI containers) one stays,
# so it does not count. ps exits 1 when the user has no process at all.
live_qemu() {
    { ps -u "$user" -o pid=,stat=,comm= || true; } | awk '$2 !~ /^Z/ && $3 ~ /^qemu-system/'
}
# shellcheck disable=SC2317  # run by the trap
cleanup() {
    local s pid
    for s in "$work"/cp/*; do
        if [ -S "$s" ]; then ssh -o ControlPath="$s" -O exit managed-host >/dev/null 2>&1 || true; fi
    done
    if [ -n "$started" ] && [ -s "$work/sshd.pid" ]; then
        as_root kill "$(cat "$work/sshd.pid")" 2>/dev/null || true
    fi
    # A failed play may leave its QEMU running: it goes before the ops home it uses.
    for pid in $(live_qemu | awk '{print $1}'); do as_root kill -KILL "$pid" 2>/dev/null || true; done
    # The managed user's keys and ops home go too: the next run starts on an empty home.
    as_root rm -rf -- "$home/.ssh" "$home/.ops" "$home/ssh-run" "$home/.ansible"
    rm -rf "$work"
}
trap cleanup EXIT
as_root rm -rf -- "$home/.ops" "$home/ssh-run" "$home/.ansible"  # a killed run's

ssh-keygen -q -t ed25519 -N '' -C "unikernel-ops ssh run host" -f "$work/host_key"
ssh-keygen -q -t ed25519 -N '' -C "unikernel-ops ssh run client" -f "$work/client_key"
# ~/.ssh made afresh: the user under test could have left a link there that install, as root,
# would follow and hand over
as_root rm -rf -- "$home/.ssh"
as_root install -d -o "$user" -g "$(id -gn "$user")" -m 0700 "$home/.ssh"
as_root install -o "$user" -g "$(id -gn "$user")" -m 0600 "$work/client_key.pub" "$home/.ssh/authorized_keys"

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat > "$work/sshd_config" <<CONFIG
ListenAddress 127.0.0.1
Port $port
HostKey $work/host_key
PidFile $work/sshd.pid
AllowUsers $user
AuthenticationMethods publickey
PubkeyAuthentication yes
AuthorizedKeysFile .ssh/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin no
UsePAM no
StrictModes yes
AllowAgentForwarding no
AllowTcpForwarding no
X11Forwarding no
PrintMotd no
Subsystem sftp internal-sftp
CONFIG
printf '[127.0.0.1]:%s %s\n' "$port" "$(cut -d' ' -f1-2 "$work/host_key.pub")" > "$work/known_hosts"

as_root install -d -m 0755 /run/sshd  # its privilege separation folder; no systemd makes it here
as_root /usr/sbin/sshd -t -f "$work/sshd_config"
as_root /usr/sbin/sshd -D -e -f "$work/sshd_config" 2>"$work/sshd.log" &
started=1
for _try in $(seq 50); do
    [ -s "$work/sshd.pid" ] && break
    sleep 0.1
done
[ -s "$work/sshd.pid" ] || { cat "$work/sshd.log" >&2; echo "sshd did not start" >&2; exit 1; }

mkdir -p "$work/cp"
rc=0
UOPS_SSH_PORT=$port UOPS_SSH_USER=$user UOPS_SSH_KEY="$work/client_key" UOPS_SSH_KNOWN_HOSTS="$work/known_hosts" \
    UOPS_SSH_PYTHON=$python ANSIBLE_SSH_CONTROL_PATH_DIR="$work/cp" \
    ansible-playbook -i "$HERE/inventory.yml" "$HERE/managed_host.yml" -e ssh_run_build="$work/build" "$@" || rc=$?
# The play removed its instance: no QEMU of the managed user may outlive it.
still=$(live_qemu)
if [ "$rc" -eq 0 ] && [ -n "$still" ]; then
    echo "a QEMU of $user still runs after the play removed its instance: $still" >&2
    rc=1
fi
if [ "$rc" -ne 0 ]; then
    echo "--- sshd's log" >&2
    tail -n 20 "$work/sshd.log" >&2
fi
exit "$rc"
