#!/usr/bin/env bash
# The seed's Cilium Cluster Mesh walkthrough (steps 1 to 7), with Tendril's CLI
# in the place of kind, cilium and kubectl, on two lab clusters. Each step's
# "Verify" block is checked; the script stops at the first failure and says which.
#
#   bash examples/seed-walkthrough/run.sh          # run, then tear the clusters down
#   KEEP=1 bash examples/seed-walkthrough/run.sh   # leave the clusters running afterwards
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"

if [ "$(id -u)" != "0" ]; then
  echo "The lab needs root (network namespaces, eBPF, cgroups). Run: sudo bash examples/seed-walkthrough/run.sh" >&2
  exit 1
fi
bash scripts/setup.sh

tendril() { node "$root/bin/tendril.mjs" "$@"; }
step() { printf '\n\033[1m== %s ==\033[0m\n' "$*"; }
ok() { printf '\033[32mverified:\033[0m %s\n' "$*"; }
fail() { printf '\033[31mFAILED:\033[0m %s\n' "$*" >&2; exit 1; }
# retry SECONDS CMD...: run CMD until it succeeds or SECONDS pass.
retry() {
  local deadline=$((SECONDS + $1)); shift
  until "$@"; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 1
  done
}

cleanup() {
  rm -rf "$work"
  if [ "${KEEP:-0}" = "1" ]; then
    echo "KEEP=1: clusters left running; remove them with: npx tendril lab delete cluster1 && npx tendril lab delete cluster2"
  else
    step "Tear down"
    tendril lab delete cluster1 || true
    tendril lab delete cluster2 || true
  fi
}

for c in cluster1 cluster2; do
  if tendril lab list -o name 2>/dev/null | grep -qx "$c"; then
    echo "A lab cluster named $c exists from an earlier run; deleting it first."
    tendril lab delete "$c"
  fi
done
work=$(mktemp -d /tmp/tendril-walkthrough.XXXXXX)
trap cleanup EXIT

step "Step 1: Create your clusters"
tendril lab create cluster1 --wait
tendril lab create cluster2 --wait
tendril config get-contexts | tee "$work/contexts.txt"
grep -q 'lab-cluster1' "$work/contexts.txt" || fail "context lab-cluster1 is missing"
grep -q 'lab-cluster2' "$work/contexts.txt" || fail "context lab-cluster2 is missing"
ok "contexts lab-cluster1 and lab-cluster2 exist"

step "Step 2: Install Tendril on both clusters"
tendril install --cluster-name cluster1 --context lab-cluster1 --enable-cross-cluster-ipvs --enable-l7-proxy --enable-identity-allocation-mode CRD
tendril install --cluster-name cluster2 --context lab-cluster2 --enable-cross-cluster-ipvs --enable-l7-proxy --enable-identity-allocation-mode CRD
tendril status --context lab-cluster1 --wait || fail "status of cluster1 is not OK"
tendril status --context lab-cluster2 --wait || fail "status of cluster2 is not OK"
ok "agents, operator and DNS are OK on both clusters"

step "Step 3: Enable and connect Cluster Mesh"
tendril clustermesh enable --context lab-cluster1 --service-type NodePort
tendril clustermesh connect --context lab-cluster2 --destination-context lab-cluster1
for c in cluster1 cluster2; do
  tendril clustermesh status --context "lab-$c" --wait | tee "$work/mesh-$c.txt" || fail "clustermesh status of $c is not OK"
  grep -q '2/2 clusters' "$work/mesh-$c.txt" || fail "$c does not show 2/2 clusters"
done
ok "the mesh shows 2/2 clusters from both sides"

# deploy_and_verify N: seed steps 4 and 6.
deploy_and_verify() {
  local n=$1
  tendril --context "lab-cluster$n" apply -f "$here/echo-c$n.yaml"
  retry 90 sh -c "node '$root/bin/tendril.mjs' --context lab-cluster$n get deploy echo-service-c$n -o json | grep -q '\"readyReplicas\": 1'" \
    || fail "deployment echo-service-c$n did not become ready"
  tendril --context "lab-cluster$n" get deploy,svc,endpointslices
  retry 60 sh -c "node '$root/bin/tendril.mjs' --context lab-cluster$n get endpointslice echo-service-c$n-mesh -o json | grep -q '\"addresses\"'" \
    || fail "the global EndpointSlice echo-service-c$n-mesh was not filled"
  ok "echo-service-c$n is ready and its global EndpointSlice is filled"
}

# curl_across FROM TO: seed steps 5 and 7; the answer must come from a pod of cluster TO.
curl_across() {
  local from=$1 to=$2 out pods
  out=$(tendril --context "lab-cluster$from" run -it --rm --restart=Never curl --image=curlimages/curl -- \
    curl -sS --max-time 10 "http://echo-service-c$to.default.svc.cluster.local:80") || fail "curl from cluster$from failed: $out"
  echo "$out"
  pods=$(tendril --context "lab-cluster$to" get pods -l "app=echo-service-c$to" -o name | sed 's|^pod/||')
  local host
  host=$(printf '%s' "$out" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const j=JSON.parse(s.slice(s.indexOf("{"), s.lastIndexOf("}")+1));console.log(j.os.hostname)})') \
    || fail "the answer from cluster$to is not the echo JSON"
  printf '%s\n' "$pods" | grep -qx "$host" || fail "the answer came from $host, not from a pod of cluster$to ($pods)"
  ok "cluster$from reached echo-service-c$to; pod $host of cluster$to answered"
}

step "Step 4: Deploy and expose a service in cluster1"
deploy_and_verify 1

step "Step 5: Access the service from cluster2"
curl_across 2 1

step "Step 6: Deploy and expose a service in cluster2"
deploy_and_verify 2

step "Step 7: Access the service in cluster2 from cluster1"
curl_across 1 2

printf '\n\033[32mThe walkthrough ran end to end.\033[0m\n'
