#!/usr/bin/env bash
# run_test.sh SHARED_DIR COMMAND [ARG...] - how CTest runs every unit and
# integration test (CMakeLists.txt, cf_add_test).
#
# CF_SHARED_DIR tells a test where the shared datasets are.  Set in the
# environment when ctest runs, it wins; otherwise the test gets
# SHARED_DIR, the CMake cache variable CF_SHARED_DIR (-DCF_SHARED_DIR=...,
# or CF_SHARED_DIR in the environment at configure time, or ../shared
# beside the source tree).  CTest's ENVIRONMENT property cannot express
# "unless already set", hence this script.
set -u
if [ -z "${CF_SHARED_DIR:-}" ]; then
    CF_SHARED_DIR=$1
fi
export CF_SHARED_DIR
shift
exec "$@"
