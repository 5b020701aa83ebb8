#!/bin/sh
# postgres.sh makes a local PostgreSQL ready for the registrar's tests and
# benchmarks and prints its URL on stdout (export it as GRIDNODE_TEST_POSTGRES).
# It is idempotent: it installs the Debian package only when missing, starts
# the Debian cluster only when down, and creates the role and database only
# when absent. Everything it says besides the URL goes to stderr.
#
#   export GRIDNODE_TEST_POSTGRES=$(.ci/postgres.sh)
#
# PGVERSION, PGCLUSTER, PGPORT, PGUSER_NAME, PGDB_NAME override the defaults.
set -eu

ver=${PGVERSION:-15}
cluster=${PGCLUSTER:-main}
port=${PGPORT:-5432}
user=${PGUSER_NAME:-gridnode}
db=${PGDB_NAME:-gridnode_test}
pass=${PGPASS_WORD:-gridnode}

log() { echo "postgres.sh: $*" >&2; }

if ! command -v pg_ctlcluster >/dev/null 2>&1 || [ ! -x /usr/lib/postgresql/$ver/bin/postgres ]; then
	log "installing postgresql"
	if [ "$(id -u)" -ne 0 ]; then
		log "need root to apt-get install postgresql; run as root or install it first"
		exit 1
	fi
	DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql >&2
fi

if ! pg_lsclusters -h 2>/dev/null | awk '{print $1" "$2}' | grep -qx "$ver $cluster"; then
	log "creating cluster $ver/$cluster on port $port"
	pg_createcluster "$ver" "$cluster" -p "$port" >&2
fi

status=$(pg_lsclusters -h | awk -v v="$ver" -v c="$cluster" '$1==v && $2==c {print $4}')
if [ "$status" != "online" ]; then
	log "starting cluster $ver/$cluster"
	pg_ctlcluster "$ver" "$cluster" start >&2
fi
port=$(pg_lsclusters -h | awk -v v="$ver" -v c="$cluster" '$1==v && $2==c {print $3}')

# Wait until the server accepts connections (it may still be recovering).
i=0
until su postgres -c "psql -p $port -Atqc 'select 1'" >/dev/null 2>&1; do
	i=$((i + 1))
	if [ $i -gt 60 ]; then
		log "cluster $ver/$cluster on port $port does not accept connections after 30 s; see /var/log/postgresql/postgresql-$ver-$cluster.log"
		exit 1
	fi
	sleep 0.5
done

psql_admin() { su postgres -c "psql -p $port -v ON_ERROR_STOP=1 -Atq $*"; }

if [ "$(psql_admin "-c \"select 1 from pg_roles where rolname='$user'\"")" != 1 ]; then
	log "creating role $user"
	psql_admin "-c \"create role $user login password '$pass'\"" >&2
fi
if [ "$(psql_admin "-c \"select 1 from pg_database where datname='$db'\"")" != 1 ]; then
	log "creating database $db"
	psql_admin "-c \"create database $db owner $user\"" >&2
fi

echo "postgres://$user:$pass@127.0.0.1:$port/$db?sslmode=disable"
