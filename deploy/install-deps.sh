#!/usr/bin/env bash
# Installs every Debian 12 package gdlab needs: build, run, tests, benchmarks, Python analysis.
# Idempotent: packages already present are skipped by apt-get; the package-list refresh is done
# only when something is missing. This is the single install list used by README and .ci/run.
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config git ca-certificates
  openmpi-bin libopenmpi-dev
  libhdf5-dev hdf5-tools
  libprotobuf-dev protobuf-compiler
  libeigen3-dev librandom123-dev
  libboost-dev
  libgtest-dev libgmock-dev
  libbenchmark-dev
  python3 python3-h5py python3-numpy python3-matplotlib python3-mpi4py
  procps coreutils
  slurmctld slurmd slurm-client munge tini
  clang libclang-rt-14-dev
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "deploy/install-deps.sh: all ${#PACKAGES[@]} packages already installed"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "deploy/install-deps.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
