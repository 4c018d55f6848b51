#!/usr/bin/env bash
# with_preload.sh OBJECT COMMAND...: run COMMAND with OBJECT added to
# LD_PRELOAD after what is already there (a sanitizer runtime must stay first).
object=$1
shift
export LD_PRELOAD="${LD_PRELOAD:+$LD_PRELOAD:}$object"
exec "$@"
