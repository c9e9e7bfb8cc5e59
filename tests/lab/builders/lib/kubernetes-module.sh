# Sourced by the builders that compile from k8s.io/kubernetes (kubernetes.sh,
# e2e.sh). k8s.io/kubernetes replaces its staging modules with local paths,
# which a dependent module cannot see, so the wrapper module written here pins
# each of them to the matching v0.MINOR.PATCH tag.
# usage: kubernetes_wrapper_module MODULE_NAME VERSION   (VERSION like v1.37.2)
# Changes to a new temporary directory (removed when the script exits), writes
# go.mod there and exports GOFLAGS=-mod=mod, which lets go build add the
# requirements of each package it builds.
kubernetes_wrapper_module() {
  local name=$1 version=$2 modfile go_directive
  KUBERNETES_WORK=$(mktemp -d)
  trap 'rm -rf "$KUBERNETES_WORK"' EXIT
  cd "$KUBERNETES_WORK"
  local staging_version="v0.${version#v1.}"
  modfile=$(go mod download -json "k8s.io/kubernetes@${version}" |
    python3 -c 'import json, sys; d = json.load(sys.stdin); print(d.get("GoMod") or sys.exit(d.get("Error")))')
  go_directive=$(awk '$1 == "go" {print $2; exit}' "$modfile")
  {
    echo "module ${name}"
    echo "go ${go_directive}"
    echo "require k8s.io/kubernetes ${version}"
    awk -v sv="$staging_version" '$2 == "=>" && $3 ~ /^\.\/staging\// {print "replace " $1 " => " $1 " " sv}' "$modfile"
  } > go.mod
  export GOFLAGS=-mod=mod
}

# usage: kubernetes_version_ldflags VERSION   (VERSION like v1.37.2)
# Prints the linker flags that stamp VERSION into k8s.io/component-base/version
# as a release build does (stripped, a fixed build date).
kubernetes_version_ldflags() {
  local version=$1 pkg=k8s.io/component-base/version minor
  minor=$(echo "$version" | cut -d. -f2)
  printf '%s' "-s -w -X ${pkg}.gitVersion=${version} -X ${pkg}.gitMajor=1 -X ${pkg}.gitMinor=${minor}" \
    " -X ${pkg}.gitTreeState=clean -X ${pkg}.buildDate=1970-01-01T00:00:00Z"
}
