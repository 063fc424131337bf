#!/bin/sh
# Prepares Garage for lifeboat through its admin API (v2): a one-node layout, the bucket
# lifeboat-offsite, the agents' access key (imported from secret files) with read, write and
# owner rights on it. Idempotent: run it again and it changes nothing.
#
#   garage-init.sh ADMIN_URL
#
# Environment (file paths, never values): GARAGE_ADMIN_TOKEN_FILE, GARAGE_KEY_ID_FILE,
# GARAGE_SECRET_KEY_FILE; optional BUCKET (default lifeboat-offsite), ZONE (dc1),
# CAPACITY (bytes, default 100 GB). Needs only sh, curl and sed (the curl image has them).
set -eu

admin=${1:?usage: garage-init.sh ADMIN_URL}
bucket=${BUCKET:-lifeboat-offsite}
zone=${ZONE:-dc1}
capacity=${CAPACITY:-100000000000}
token=$(cat "${GARAGE_ADMIN_TOKEN_FILE:?}")
key_id=$(cat "${GARAGE_KEY_ID_FILE:?}")
secret=$(cat "${GARAGE_SECRET_KEY_FILE:?}")

# call METHOD ENDPOINT [JSON]: the answer on stdout; fails on a non-2xx status.
call() {
    if [ $# -ge 3 ]; then
        curl -fsS -X "$1" -H "Authorization: Bearer $token" \
            -H 'Content-Type: application/json' --data "$3" "$admin/v2/$2"
    else
        curl -fsS -X "$1" -H "Authorization: Bearer $token" "$admin/v2/$2"
    fi
}
# The first "id" of a JSON answer (the node's, the bucket's).
first_id() { sed -n 's/^[^"]*{[^{]*"id" *: *"\([0-9a-f]*\)".*/\1/p' | head -n 1; }

i=0
until status=$(call GET GetClusterStatus 2>/dev/null); do
    i=$((i + 1))
    [ "$i" -le 60 ] || { echo "garage-init: no admin API at $admin" >&2; exit 1; }
    sleep 1
done

if printf '%s' "$status" | grep -q '"layoutVersion" *: *0[,}]'; then
    node=$(printf '%s' "$status" | tr -d '\n' | sed -n 's/.*"nodes" *: *\[ *{[^}]*"id" *: *"\([0-9a-f]*\)".*/\1/p')
    [ -n "$node" ] || { echo "garage-init: no node id in $status" >&2; exit 1; }
    call POST UpdateClusterLayout \
        "{\"roles\":[{\"id\":\"$node\",\"zone\":\"$zone\",\"capacity\":$capacity,\"tags\":[]}]}" >/dev/null
    call POST ApplyClusterLayout '{"version":1}' >/dev/null
    echo "garage-init: layout applied (node $node, zone $zone)"
fi

if ! info=$(call GET "GetBucketInfo?globalAlias=$bucket" 2>/dev/null); then
    info=$(call POST CreateBucket "{\"globalAlias\":\"$bucket\"}")
    echo "garage-init: bucket $bucket created"
fi
bucket_id=$(printf '%s' "$info" | tr -d '\n' | first_id)
[ -n "$bucket_id" ] || { echo "garage-init: no bucket id in $info" >&2; exit 1; }

if ! call GET "GetKeyInfo?id=$key_id" >/dev/null 2>&1; then
    call POST ImportKey \
        "{\"accessKeyId\":\"$key_id\",\"secretAccessKey\":\"$secret\",\"name\":\"lifeboat\"}" >/dev/null
    echo "garage-init: key $key_id imported"
fi
call POST AllowBucketKey \
    "{\"bucketId\":\"$bucket_id\",\"accessKeyId\":\"$key_id\",\"permissions\":{\"read\":true,\"write\":true,\"owner\":true}}" >/dev/null
echo "garage-init: key $key_id may read and write $bucket"
