#!/usr/bin/env bash
# The OCI runtime of the kind Docker daemon (scripts/kind/dockerd.sh): runc, after removing from a new
# container's capability sets every capability this machine's bounding set lacks. kind starts its nodes
# with --privileged, for which dockerd asks for every capability the kernel knows; where the machine
# itself runs without one (CAP_SYS_RESOURCE here), runc fails with "unable to apply caps: operation not
# permitted" (for `docker exec --privileged` too: runc exec --process). Inside the nodes containerd already derives privileged capabilities from its own set.
set -euo pipefail
CAPS=(CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID KILL SETGID SETUID SETPCAP LINUX_IMMUTABLE NET_BIND_SERVICE
  NET_BROADCAST NET_ADMIN NET_RAW IPC_LOCK IPC_OWNER SYS_MODULE SYS_RAWIO SYS_CHROOT SYS_PTRACE SYS_PACCT SYS_ADMIN
  SYS_BOOT SYS_NICE SYS_RESOURCE SYS_TIME SYS_TTY_CONFIG MKNOD LEASE AUDIT_WRITE AUDIT_CONTROL SETFCAP MAC_OVERRIDE
  MAC_ADMIN SYSLOG WAKE_ALARM BLOCK_SUSPEND AUDIT_READ PERFMON BPF CHECKPOINT_RESTORE)

# drop FILE JQ_PATH: removes the missing capabilities from the capability sets at JQ_PATH of FILE
drop() {
  local file="$1" path="$2" bounding i missing=()
  bounding=$((16#$(awk '/^CapBnd:/ { print $2 }' /proc/self/status)))
  for i in "${!CAPS[@]}"; do
    (( (bounding >> i) & 1 )) || missing+=("\"CAP_${CAPS[i]}\"")
  done
  (( ${#missing[@]} )) || return 0
  jq --argjson drop "[$(IFS=,; echo "${missing[*]}")]" \
    "${path} |= (if . == null then . else with_entries(.value -= \$drop) end)" "${file}" > "${file}.bounded"
  mv "${file}.bounded" "${file}"
}

args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  case "${args[i]}" in
    --bundle|-b) [[ -f "${args[i + 1]}/config.json" ]] && drop "${args[i + 1]}/config.json" .process.capabilities ;;
    --process|-p) [[ -f "${args[i + 1]}" ]] && drop "${args[i + 1]}" .capabilities ;;
  esac
done
exec runc "$@"
