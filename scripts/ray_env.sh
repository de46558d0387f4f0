# Sourced by run.sh and stop.sh: Ray's token auth with a token kept in run/ (made once).
export RAY_USAGE_STATS_ENABLED=0
if [ "${REELSERVE_RAY_AUTH:-token}" = "token" ]; then
  export RAY_AUTH_MODE=token RAY_AUTH_TOKEN_PATH="$RUN_DIR/ray_auth_token"
  if [ ! -s "$RAY_AUTH_TOKEN_PATH" ]; then
    (umask 077 && python -c 'import secrets; print(secrets.token_hex(32))' > "$RAY_AUTH_TOKEN_PATH")
  fi
else
  export RAY_AUTH_MODE=disabled
fi
