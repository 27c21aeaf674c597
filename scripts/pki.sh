#!/usr/bin/env bash
# Certificates for a local secure Titan cluster, made with openssl:
#   scripts/pki.sh <dir> [node-id ...]
# makes in <dir> (files that exist are kept, so it can run again to add nodes):
#   ca.pem, ca-key.pem                    the cluster's CA
#   server.pem, server-key.pem            etcd's certificate, for 127.0.0.1 and localhost
#   root.pem, root-key.pem                CN root: etcd's root user, for `titan auth setup`
#   titan-master.pem, titan-master-key.pem
#   titan-operator.pem, titan-operator-key.pem   an operator (`titan auth add-user titan-operator --role operator`)
#   titan-node-<id>.pem, titan-node-<id>-key.pem for each node id given
# With etcd --client-cert-auth the certificate's CN is the etcd user.
set -euo pipefail

if [ $# -lt 1 ]; then
  echo "usage: $0 <dir> [node-id ...]" >&2
  exit 2
fi
command -v openssl >/dev/null || { echo "$0: openssl not found (apt-get install openssl)" >&2; exit 1; }

dir=$1
shift
mkdir -p "$dir"
chmod 700 "$dir"
days=825

key() { # <file>: an EC P-256 key, readable by its owner only
  [ -f "$1" ] && return 0
  (umask 077 && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null)
}

if [ ! -f "$dir/ca.pem" ]; then
  key "$dir/ca-key.pem"
  openssl req -x509 -new -key "$dir/ca-key.pem" -subj "/CN=titan-ca" -days "$days" -sha256 \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out "$dir/ca.pem" 2>/dev/null
fi

issue() { # <name> <CN> <extendedKeyUsage> [subjectAltName]
  local name=$1 cn=$2 usage=$3 san=${4:-}
  [ -f "$dir/$name.pem" ] && return 0
  key "$dir/$name-key.pem"
  local ext
  ext=$(mktemp)
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=$usage"
    [ -n "$san" ] && echo "subjectAltName=$san"
  } >"$ext"
  openssl req -new -key "$dir/$name-key.pem" -subj "/CN=$cn" 2>/dev/null |
    openssl x509 -req -CA "$dir/ca.pem" -CAkey "$dir/ca-key.pem" -CAcreateserial -days "$days" -sha256 \
      -extfile "$ext" -out "$dir/$name.pem" 2>/dev/null
  rm -f "$ext"
}

issue server titan-etcd serverAuth,clientAuth "IP:127.0.0.1,DNS:localhost"
issue root root clientAuth
issue titan-master titan-master clientAuth
issue titan-operator titan-operator clientAuth
for node in "$@"; do
  if ! [[ $node =~ ^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$ ]]; then
    echo "$0: \"$node\" is not a node id (1-63 letters, digits, '.', '_' or '-')" >&2
    exit 2
  fi
  issue "titan-node-$node" "titan-node-$node" clientAuth
done
rm -f "$dir/ca.srl"
echo "$dir"
