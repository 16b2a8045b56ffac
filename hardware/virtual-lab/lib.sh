# Shared by the host-side virtual-lab scripts (sourced, not run): paths, progress lines, errors.
# shellcheck shell=bash

lab_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
repo_root=$(cd "$lab_dir/../.." && pwd -P)
# shellcheck disable=SC2034 # used by the scripts that source this
cache_dir=$repo_root/target/virtual-lab

# Progress line on stderr, with the seconds since the entry command started.
: "${VIRTUAL_LAB_T0:=$(date +%s)}"
export VIRTUAL_LAB_T0
say() { printf 'virtual-lab [%3ss] %s\n' "$(($(date +%s) - VIRTUAL_LAB_T0))" "$*" >&2; }
die() { printf 'virtual-lab: error: %s\n' "$*" >&2; exit 2; }

need_command() { # need_command CMD HINT
  command -v "$1" >/dev/null 2>&1 || die "$1 not found: $2"
}
