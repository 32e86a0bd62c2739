#!/usr/bin/env bash
# Regenerates esm/_proto from proto/. The output is committed so `pip install .` needs no step.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m grpc_tools.protoc -Iproto --python_out=esm/_proto --grpc_python_out=esm/_proto \
  --mypy_out=esm/_proto proto/esm/v1/function.proto
# protoc emits absolute imports (`from esm.v1 import ...`); make them package-relative.
sed -i 's/^from esm\.v1 import function_pb2/from esm._proto.esm.v1 import function_pb2/' esm/_proto/esm/v1/function_pb2_grpc.py
