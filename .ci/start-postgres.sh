#!/usr/bin/env bash
# Installs PostgreSQL from Debian's packages when missing, starts a cluster, and prints the URL
# of a superuser role for the test suite (tests create a fresh database per test module).
set -euo pipefail
if ! command -v pg_lsclusters >/dev/null 2>&1; then
  echo "start-postgres: installing postgresql from Debian's packages ..." >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq postgresql >&2
fi
read -r version cluster port status _ < <(pg_lsclusters --no-header | head -n1)
if [ "$status" != "online" ]; then
  pg_ctlcluster "$version" "$cluster" start >&2
fi
su postgres -c "psql -q -p $port -tc \"SELECT 1 FROM pg_roles WHERE rolname='eais_test'\" | grep -q 1 || psql -q -p $port -c \"CREATE ROLE eais_test LOGIN SUPERUSER PASSWORD 'eais_test'\"" >&2
echo "postgresql://eais_test:eais_test@127.0.0.1:$port/postgres"
