# Sourced by scripts/serve, scripts/test and bench/run: makes .venv and installs relaygate into it with
# the extras the caller names in RELAYGATE_EXTRAS (scripts/serve: none, only what serving needs;
# scripts/test: "test docs"). Installs again when pyproject.toml changes or an extra is missing.
#
# Installs take turns: whoever installs holds a lock on .venv.lock, so that scripts/serve and
# scripts/test started at once on a fresh clone wait for each other instead of both writing into one
# venv. The lock is released before the caller runs anything.
set -euo pipefail
PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "relaygate needs Python 3.11 or newer as \$PYTHON (now: $PYTHON)" >&2
  exit 1
fi
_rg_extras=${RELAYGATE_EXTRAS:-}
_rg_stamp=.venv/.relaygate-installed  # the extras installed since pyproject.toml last changed

_rg_say() { echo "relaygate: $*" >&2; }

# Whether .venv holds relaygate with every extra asked for, installed after pyproject.toml last changed.
_rg_installed() {
  [ -x .venv/bin/python ] && [ -f "$_rg_stamp" ] && [ ! pyproject.toml -nt "$_rg_stamp" ] || return 1
  local extra
  for extra in $_rg_extras; do
    grep -qx "$extra" "$_rg_stamp" || return 1
  done
}

# flock(2) through Python, which every platform here has (macOS has no flock command): the lock
# belongs to the open file behind descriptor 9, which this shell keeps after Python exits.
_rg_lock() {
  "$PYTHON" -c 'import fcntl, sys; fcntl.flock(9, fcntl.LOCK_EX | (fcntl.LOCK_NB if sys.argv[1] == "try" else 0))' "$1" \
    2>/dev/null
}

if ! _rg_installed; then
  exec 9>>.venv.lock
  if ! _rg_lock try; then
    _rg_say "another scripts/serve or scripts/test is installing into .venv; waiting for it to finish"
    _rg_lock wait
  fi
  if ! _rg_installed; then  # the other one may have installed all that is needed
    _rg_started=$SECONDS
    if [ ! -x .venv/bin/python ]; then
      _rg_say "making .venv with $("$PYTHON" --version 2>&1) (first run)"
      "$PYTHON" -m venv .venv
    fi
    _rg_previous=""
    if [ -f "$_rg_stamp" ] && [ ! pyproject.toml -nt "$_rg_stamp" ]; then
      _rg_previous=$(cat "$_rg_stamp")
    fi
    if [ -z "$_rg_extras" ]; then
      _rg_target=.
      _rg_say "installing relaygate and what serving needs into .venv (pip install -e .); the first time takes a minute or so"
    else
      _rg_target=".[$(echo $_rg_extras | tr ' ' ',')]"
      _rg_say "installing relaygate with its extras ($_rg_extras) into .venv (pip install -e '$_rg_target')"
    fi
    .venv/bin/python -m pip install --disable-pip-version-check --progress-bar off -e "$_rg_target" \
      >.venv/pip.log 2>&1 &
    _rg_pip=$!
    _rg_said=$SECONDS
    while kill -0 "$_rg_pip" 2>/dev/null; do  # a line every 15 s, so that a slow network does not look stuck
      sleep 1
      if [ $((SECONDS - _rg_said)) -ge 15 ]; then
        _rg_said=$SECONDS
        _rg_say "still installing ($((SECONDS - _rg_started)) s so far; pip's output goes to .venv/pip.log)"
      fi
    done
    if ! wait "$_rg_pip"; then
      tail -n 30 .venv/pip.log >&2
      _rg_say "the install failed; the whole log is in .venv/pip.log"
      exit 1
    fi
    printf '%s\n' $_rg_previous $_rg_extras | sort -u >"$_rg_stamp.tmp"
    mv "$_rg_stamp.tmp" "$_rg_stamp"
    _rg_count=$(grep -m1 '^Successfully installed' .venv/pip.log | wc -w)
    _rg_say "installed $((_rg_count > 2 ? _rg_count - 2 : 0)) packages in $((SECONDS - _rg_started)) s ($(du -sm .venv | cut -f1) MB in .venv); later runs skip this"
  fi
  exec 9>&-  # release the lock: what the caller runs next must not hold it
fi
