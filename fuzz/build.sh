#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/spec_fuzz, fuzz/wire_fuzz) with clang++ and
# -fsanitize=fuzzer,address,undefined, straight from the sources they need (no CMake: the fuzz
# build is separate from the project's). Usage: fuzz/build.sh [BUILD_DIR]   (default build-fuzz/libfuzzer)
# Needs clang and libclang-rt-14-dev (deploy/install-deps.sh), protoc, libprotobuf-dev, Eigen.
# Incremental: a source is recompiled when it or any header it includes (its -MMD dependency
# file) is newer than its object.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$repo/build-fuzz/libfuzzer}
CXX=${CXX_FUZZ:-clang++}
JOBS=${JOBS:-$(nproc)}

command -v "$CXX" >/dev/null 2>&1 ||
  { echo "fuzz/build.sh: $CXX not found; install clang and libclang-rt-14-dev (deploy/install-deps.sh)" >&2; exit 1; }
command -v protoc >/dev/null 2>&1 || { echo "fuzz/build.sh: protoc not found (deploy/install-deps.sh)" >&2; exit 1; }
mkdir -p "$build/gen" "$build/obj"

# Generated protobuf sources.
protos=(gdlab separable sgd_separable loss_tails lexicographic_margin init_shape relu_minima_stability
        gfs_sharpness async_sgd service random_interpolator)
for p in "${protos[@]}"; do
  if [ ! -e "$build/gen/proto/$p.pb.cc" ] || [ "$repo/proto/$p.proto" -nt "$build/gen/proto/$p.pb.cc" ]; then
    (cd "$repo" && protoc -I . --cpp_out="$build/gen" "proto/$p.proto")
  fi
done

# Everything parse_campaign needs: the spec layer, the kind registry and every kind (each kind
# validates and prepares its tasks while the spec loads), and the numerics the kinds call.
# No HDF5, no MPI, no campaign store.
sources=(
  common/campaign.cc
  common/experiment_kind.cc
  common/transport_mpi.cc
  worker/kinds/separable_common.cc
  worker/kinds/separable_gd.cc
  worker/kinds/sgd_separable.cc
  worker/kinds/loss_tails.cc
  worker/kinds/lexicographic_margin.cc
  worker/kinds/init_shape.cc
  worker/kinds/relu_minima_stability.cc
  worker/kinds/gfs_sharpness.cc
  worker/kinds/async_sgd.cc
  worker/kinds/random_interpolator.cc
  worker/numerics/separable.cc
  worker/numerics/sgd_separable.cc
  worker/numerics/loss_tails.cc
  worker/numerics/lexicographic_margin.cc
  worker/numerics/init_shape.cc
  worker/numerics/hessian.cc
  worker/numerics/relu_minima_stability.cc
  worker/numerics/gfs_sharpness.cc
  worker/numerics/async_sgd.cc
  worker/numerics/interpolator_quantized.cc
  worker/numerics/interpolator_fast.cc
  worker/numerics/interpolator_continuous.cc
  worker/parameter_server.cc
)
for p in "${protos[@]}"; do sources+=("$build/gen/proto/$p.pb.cc"); done

# shellcheck disable=SC2054  # commas belong to the flag
san=(-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g -O1)
# MPI's headers as system headers (the parameter server's MPI link is header-only code in the kinds).
read -r -a mpi_compile <<< "$(mpicxx --showme:compile | sed 's/-I/-isystem /g')"
read -r -a mpi_link <<< "$(mpicxx --showme:link)"
flags=(-std=c++20 "${san[@]}" -fsanitize=fuzzer-no-link -I"$repo" -I"$build/gen" -I/usr/include/eigen3
       "${mpi_compile[@]}" -DGDLAB_VERSION=\"fuzz\")
warn=(-Wall -Wextra -Wpedantic -Werror)

export CXX
objs=()
jobs_list=()
for s in "${sources[@]}"; do
  case $s in /*) src=$s ;; *) src=$repo/$s ;; esac
  obj=$build/obj/$(echo "${s#"$build/gen/"}" | tr '/' '_').o
  objs+=("$obj")
  case $s in /*) jobs_list+=("$src $obj") ;; *) jobs_list+=("$src $obj ${warn[*]}") ;; esac
done
for t in spec_fuzz wire_fuzz; do jobs_list+=("$repo/fuzz/$t.cc $build/obj/fuzz_$t.o ${warn[*]}"); done

# Parallel compile (the flag arrays are rebuilt inside each job).
printf '%s\n' "${jobs_list[@]}" | FLAGS="${flags[*]}" xargs -P "$JOBS" -L 1 bash -c '
  read -r -a flags <<< "$FLAGS"; src=$0 obj=$1; shift
  dep=${obj%.o}.d stale=0
  if [ ! -e "$obj" ] || [ ! -e "$dep" ]; then
    stale=1
  else
    for f in $(sed -e "s/^[^:]*://" -e "s/\\\\$//" "$dep"); do
      if [ ! -e "$f" ] || [ "$f" -nt "$obj" ]; then stale=1; break; fi
    done
  fi
  if [ "$stale" = 1 ]; then
    "$CXX" "${flags[@]}" "$@" -MMD -MF "$dep" -c "$src" -o "$obj" ||
      { echo "fuzz/build.sh: compiling $src failed" >&2; exit 255; }
  fi'

for t in spec_fuzz wire_fuzz; do
  "$CXX" -std=c++20 "${san[@]}" -fsanitize=fuzzer "$build/obj/fuzz_$t.o" "${objs[@]}" -lprotobuf -lpthread "${mpi_link[@]}" \
    -o "$build/$t"
done
echo "fuzz/build.sh: built $build/spec_fuzz and $build/wire_fuzz"
