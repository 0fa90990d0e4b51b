#!/usr/bin/env bash
# Installs everything the stack and the tests need on a fresh machine, and reuses what is there.
# Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

LIVEKIT_VERSION="v1.13.5"
LIVEKIT_SIP_VERSION="v1.8.0"
TOOLS_DIR="${VOICEGW_TOOLS_DIR:-$HOME/.cache/voicegw-tools}"
PY="${PYTHON:-python3.11}"

# The named Debian packages that are not installed, one a line.
not_installed() {
  local p
  for p in "$@"; do
    dpkg -s "$p" >/dev/null 2>&1 || echo "$p"
  done
}

# chromium: the browser tests drive Debian's build (never a browser a tool downloads).
# redis-server: LiveKit and its SIP service share one; the libs build livekit-sip; baresip and
# SIPp (sip-tester) are the SIP phones of the phone tests.
apt_packages=(espeak-ng sox postgresql chromium redis-server libopus-dev libopusfile-dev libsoxr-dev
  pkg-config baresip-core sip-tester patch)
mapfile -t missing < <(not_installed "${apt_packages[@]}")
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  # Waits for another apt run (a second checkout's setup) instead of failing on its lock.
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq "${missing[@]}" >/dev/null
fi

# MBROLA diphone voices for the spoken-question set (espeak-ng -v mb-us1 ...): test speech only,
# nothing ships them. Debian keeps mbrola in contrib and the voices in non-free (their licence
# allows non-commercial, non-military use), components the machine's sources may not list, so
# they come through a package list of our own, outside the system's sources.
mbrola_packages=(mbrola mbrola-us1 mbrola-us2 mbrola-us3 mbrola-en1)
mapfile -t mbrola_missing < <(not_installed "${mbrola_packages[@]}")
if [ "${#mbrola_missing[@]}" -gt 0 ]; then
  echo "setup: installing MBROLA voices: ${mbrola_missing[*]}"
  apt_dir="$TOOLS_DIR/apt-mbrola"
  mkdir -p "$apt_dir/sources" "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial"
  suite=$(. /etc/os-release && echo "$VERSION_CODENAME")
  cat > "$apt_dir/sources/mbrola.sources" <<SOURCES
Types: deb
URIs: http://deb.debian.org/debian
Suites: $suite
Components: main contrib non-free
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
  apt_own=(-o DPkg::Lock::Timeout=600 -o APT::Sandbox::User=root -o Dir::Etc::SourceList=/dev/null
    -o "Dir::Etc::SourceParts=$apt_dir/sources" -o "Dir::State::Lists=$apt_dir/lists"
    -o "Dir::Cache=$apt_dir/cache")
  apt-get "${apt_own[@]}" update -qq
  apt-get "${apt_own[@]}" install -y -qq --no-install-recommends "${mbrola_missing[@]}" >/dev/null
fi

stamp=.venv/.installed-$(sha256sum requirements.lock pyproject.toml | sha256sum | cut -c1-16)
if [ ! -f "$stamp" ]; then
  echo "setup: creating .venv and installing Python dependencies"
  [ -x .venv/bin/python ] || "$PY" -m venv .venv
  .venv/bin/pip install -q -r requirements.lock
  .venv/bin/pip install -q --no-deps -e .
  rm -f .venv/.installed-*
  touch "$stamp"
fi

if [ -z "${LIVEKIT_SERVER_BIN:-}" ]; then
  bin="$TOOLS_DIR/livekit-$LIVEKIT_VERSION/livekit-server"
  if [ ! -x "$bin" ]; then
    echo "setup: building livekit-server $LIVEKIT_VERSION into $TOOLS_DIR (a few minutes, once)"
    mkdir -p "$TOOLS_DIR/livekit-$LIVEKIT_VERSION"
    GOBIN="$TOOLS_DIR/livekit-$LIVEKIT_VERSION" GOFLAGS=-mod=mod \
      go install "github.com/livekit/livekit-server/cmd/server@$LIVEKIT_VERSION"
    ln -sf server "$bin"
  fi
  echo "$bin" > .venv/livekit-server-path
else
  echo "$LIVEKIT_SERVER_BIN" > .venv/livekit-server-path
fi

# LiveKit's SIP service (phone calls), built from the module the Go proxy serves with our patches
# (scripts/patches/livekit-sip-*.patch; each says what it fixes) applied to a copy of its source.
# The build directory is named after the version and the patches, so a changed patch rebuilds.
if [ -z "${LIVEKIT_SIP_BIN:-}" ]; then
  patches=(scripts/patches/livekit-sip-*.patch)
  patch_id=$(cat "${patches[@]}" | sha256sum | cut -c1-8)
  sip_dir="$TOOLS_DIR/livekit-sip-$LIVEKIT_SIP_VERSION-p$patch_id"
  sip_bin="$sip_dir/livekit-sip"
  if [ ! -x "$sip_bin" ]; then
    echo "setup: building livekit-sip $LIVEKIT_SIP_VERSION (patched) into $TOOLS_DIR (a few minutes, once)"
    src=$(go mod download -json "github.com/livekit/sip@$LIVEKIT_SIP_VERSION" |
      "$PY" -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')
    work=$(mktemp -d)
    cp -r "$src/." "$work/"
    chmod -R u+w "$work"
    for p in "${patches[@]}"; do
      patch -s -d "$work" -p1 < "$p"
    done
    mkdir -p "$sip_dir"
    (cd "$work" && GOFLAGS=-mod=mod go build -trimpath -o "$sip_bin.$$" ./cmd/livekit-sip)
    mv "$sip_bin.$$" "$sip_bin"
    rm -rf "$work"
  fi
  echo "$sip_bin" > .venv/livekit-sip-path
else
  echo "$LIVEKIT_SIP_BIN" > .venv/livekit-sip-path
fi

# The browser client (web/): dependencies exactly as web/package-lock.json pins them, then the
# Vite build the gateway serves at `/`. Both are redone only when their inputs change.
if ! command -v npm >/dev/null 2>&1; then
  echo "setup: Node.js 20.19+ with npm is needed to build web/ (not found)" >&2
  exit 1
fi
lock_stamp=web/node_modules/.installed-$(sha256sum web/package-lock.json | cut -c1-16)
if [ ! -f "$lock_stamp" ]; then
  echo "setup: installing the web client's npm packages (npm ci)"
  (cd web && npm ci --no-audit --no-fund --loglevel=error)
  touch "$lock_stamp"
fi
build_inputs=$(find web/src web/index.html web/package-lock.json web/tsconfig.json web/vite.config.ts \
  -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16)
if [ ! -f "web/dist/.built-$build_inputs" ]; then
  echo "setup: building the web client (web/dist)"
  (cd web && npm run --silent build)
  touch "web/dist/.built-$build_inputs"
fi
