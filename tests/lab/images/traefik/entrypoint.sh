#!/bin/sh
# As the official image's entrypoint.sh: arguments that start with an option
# (`--providers.kubernetesgateway`, `--version`) or name a traefik subcommand
# (`version`, `healthcheck`) run traefik; anything else runs as given.
set -e
if [ "${1#-}" != "$1" ]; then
  set -- traefik "$@"
fi
if traefik "$1" --help >/dev/null 2>&1; then
  set -- traefik "$@"
else
  echo "= '$1' is not a Traefik command: assuming shell execution." >&2
fi
exec "$@"
