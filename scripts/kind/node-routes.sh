#!/bin/sh
# The kind cluster's CNI, in the role of kind's kindnetd: every node runs this (DaemonSet, host network).
# It writes the node's CNI configuration (ptp + host-local over the node's podCIDR, so each pod gets a
# veth and an address of this node's range) and routes every other node's podCIDR to that node's address;
# the nodes share one Docker network, so a route is all a pod-to-pod packet between nodes needs. It does
# not enforce NetworkPolicies.
set -eu
: "${NODE_NAME:?NODE_NAME must be set (downward API: spec.nodeName)}"
CNI_CONF="${CNI_CONF:-/etc/cni/net.d/10-node-routes.conflist}"
INTERVAL="${INTERVAL:-5}"

write_cni_conf() {
  tmp="${CNI_CONF}.tmp"
  cat > "$tmp" <<CONF
{
  "cniVersion": "1.0.0",
  "name": "node-routes",
  "plugins": [
    {
      "type": "ptp",
      "ipMasq": false,
      "ipam": {
        "type": "host-local",
        "dataDir": "/run/cni-ipam-state",
        "routes": [{ "dst": "0.0.0.0/0" }],
        "ranges": [[{ "subnet": "$1" }]]
      },
      "mtu": 1500
    },
    { "type": "portmap", "capabilities": { "portMappings": true } }
  ]
}
CONF
  if ! cmp -s "$tmp" "$CNI_CONF"; then
    mv "$tmp" "$CNI_CONF"
    echo "node-routes: wrote $CNI_CONF for $1"
  else
    rm -f "$tmp"
  fi
}

while true; do
  # one line per node: name podCIDR InternalIP
  if nodes="$(kubectl get nodes -o jsonpath='{range .items[*]}{.metadata.name} {.spec.podCIDR} {.status.addresses[?(@.type=="InternalIP")].address}{"\n"}{end}')"; then
    echo "$nodes" | while read -r name cidr ip; do
      [ -n "$cidr" ] && [ -n "$ip" ] || continue
      if [ "$name" = "$NODE_NAME" ]; then
        write_cni_conf "$cidr"
      else
        case "$(ip route show "$cidr")" in
          *"via $ip dev"*) ;;
          *) ip route replace "$cidr" via "$ip" && echo "node-routes: $cidr via $ip ($name)" ;;
        esac
      fi
    done
  else
    echo "node-routes: listing nodes failed; retrying in ${INTERVAL}s" >&2
  fi
  sleep "$INTERVAL"
done
