# shellcheck shell=bash
# Sourced by the scripts that run Node: puts the project's Node first on PATH
# (scripts/node-lts.sh: the machine's when it is 22 or later, else the image's
# release), keeping npm's global configuration where the machine's npm reads it
# (npm looks for it beside the node that runs it).
node_bin=$("$(dirname "${BASH_SOURCE[0]}")/node-lts.sh")
if [[ "$(dirname "$node_bin")" != "$(dirname "$(command -v node || echo /)")" ]]; then
  NPM_CONFIG_GLOBALCONFIG=${NPM_CONFIG_GLOBALCONFIG:-$(npm config get globalconfig)}
  export NPM_CONFIG_GLOBALCONFIG
  PATH="$(dirname "$node_bin"):$PATH"
  export PATH
fi
