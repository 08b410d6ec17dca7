#!/usr/bin/env bash
# Makes a CUDA 13.0 build environment out of NVIDIA's PyPI wheels, for building rkeras with
# `--features cuda` (or `cudnn`) on a machine with no CUDA install and no GPU, then prints the
# variables to export. The program it builds finds the real driver and libraries where it runs.
#
#   scripts/cuda-toolkit-from-wheels.sh /tmp/cuda13 > /tmp/cuda13.env
#   source /tmp/cuda13.env
#   cargo build --release --features cuda --example dense_autoencoder
#
# Needs python3 with pip (and network access to PyPI), gcc, unzip. CUDA_COMPUTE_CAP (default
# 90, Hopper) picks the GPU the kernels are compiled for. nvcc 13.0 matches a 580 driver; a
# newer nvcc writes PTX that older drivers refuse.
set -euo pipefail

dir=${1:?usage: $0 DIR}
cap=${CUDA_COMPUTE_CAP:-90}
mkdir -p "$dir/wheels"
python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
  --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d "$dir/wheels" \
  "nvidia-cuda-nvcc==13.0.*" "nvidia-cuda-runtime==13.0.*" "nvidia-cuda-crt==13.0.*" \
  "nvidia-nvvm==13.0.*" "nvidia-cublas==13.0.*" "nvidia-cuda-nvrtc==13.0.*" \
  "nvidia-cuda-cccl==13.0.*" "nvidia-curand" "nvidia-cudnn-cu13" >&2
for wheel in "$dir"/wheels/*.whl; do
  unzip -q -o "$wheel" -d "$dir/unpacked"
done

home="$dir/unpacked/nvidia/cu13"
# cuDNN ships in its own folder; put it beside the rest.
cp -n "$dir"/unpacked/nvidia/cudnn/include/*.h "$home/include/"
for lib in "$dir"/unpacked/nvidia/cudnn/lib/*.so.9; do
  ln -sf "$lib" "$home/lib/"
done
# The linker wants unversioned names.
(cd "$home/lib" && for name in cublas cublasLt cudart nvrtc; do ln -sf "lib$name.so.13" "lib$name.so"; done \
  && ln -sf libcurand.so.10 libcurand.so && ln -sf libcudnn.so.9 libcudnn.so)
ln -sfn lib "$home/lib64"

# The driver library comes with the driver, not the toolkit: link against a stub that defines
# every function cudarc declares (the real libcuda.so.1 is loaded where the program runs).
cudarc=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/cudarc-0.19.* 2>/dev/null | tail -1)
if [ -z "$cudarc" ]; then
  echo "cudarc's source is not in cargo's registry: run 'cargo fetch' in the workspace first" >&2
  exit 1
fi
mkdir -p "$home/lib/stubs"
grep -ho '^ *fn cu[A-Za-z0-9_]*(' "$cudarc/src/driver/sys/mod.rs" | sed 's/ *fn //; s/(//' | sort -u \
  | awk '{print "void " $1 "(void) {}"}' > "$dir/libcuda_stub.c"
gcc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$home/lib/stubs/libcuda.so" "$dir/libcuda_stub.c"

cat <<ENV
export CUDA_HOME=$home
export CUDA_PATH=$home
export PATH=$home/bin:\$PATH
export CUDA_COMPUTE_CAP=$cap
export LIBRARY_PATH=$home/lib:$home/lib/stubs
ENV
