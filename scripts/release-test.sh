#!/usr/bin/env bash
# Release test (`pnpm test:release`): release the seven packages to a throw-away local registry with the
# real flow (`changeset version` + `pnpm release`) and use them the way users meet them: installed with
# npm into empty folders outside the workspace.
#
#  1. verdaccio 6.8.0 (installed once into $MMGATHER_VERDACCIO_CACHE, default ~/.cache/mmgather-verdaccio)
#     on 127.0.0.1:<free port>, storage in a temp folder, no uplinks: nothing is fetched from or sent to
#     any other registry. It is stopped by its process id on every exit (trap).
#  2. A copy of the work tree (tracked + untracked, not ignored files) in a temp folder, committed to a
#     scratch git repo on `main`; `pnpm changeset version` consumes the changesets, `pnpm release` builds
#     and publishes. Both registry variables and the copy's .npmrc point at the local registry, and the
#     script asserts npm and pnpm both resolve to it before anything is published.
#  3. The published tarballs are fetched back and checked (files, pinned internal versions, CHANGELOG,
#     publint, attw --profile esm-only).
#  4. Users: folio alone; mmu-gather + the adapters; teardown alone with a third-party adapter
#     (scripts/release/third-party-arch.mts), then with arch-s390; arch-x86 alone and arch-arm64 alone
#     (each with its README's install line, which brings its peers). Every README example is run as printed.
#  5. A second release (patch): a partial upgrade warns and keeps one gather (`npm ls` flags the adapters
#     until they follow), the full upgrade is clean, and two installed versions recognise each other's errors.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VERDACCIO_VERSION=6.8.0
CACHE="${MMGATHER_VERDACCIO_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mmgather-verdaccio}"
PACKAGES=(folio swapcache mmu-gather arch-generic arch-s390 arch-x86 arch-arm64 teardown)
export TURBO_TELEMETRY_DISABLED=1 DO_NOT_TRACK=1

T0=$(date +%s)
step() { printf '\n== [%3ss] %s\n' "$(($(date +%s) - T0))" "$*"; }
fail() {
  echo "release-test: FAILED: $*" >&2
  exit 1
}

WORK="$(mktemp -d "${TMPDIR:-/tmp}/mmgather-release.XXXXXX")"
case "$WORK/" in "$ROOT"/*) fail "temp folder $WORK is inside the workspace" ;; esac
VPID=""
cleanup() {
  local rc=$?
  if [ -n "$VPID" ] && kill -0 "$VPID" 2>/dev/null; then
    kill "$VPID" 2>/dev/null || true
    wait "$VPID" 2>/dev/null || true
  fi
  if [ "$rc" -ne 0 ] && [ -f "$WORK/verdaccio.log" ]; then
    echo "--- verdaccio log (last 30 lines)" >&2
    tail -n 30 "$WORK/verdaccio.log" >&2 || true
  fi
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- 1. verdaccio
step "verdaccio $VERDACCIO_VERSION (cache: $CACHE)"
if [ "$(node -p "try{require('$CACHE/node_modules/verdaccio/package.json').version}catch{''}")" != "$VERDACCIO_VERSION" ]; then
  # Installed with npm from the npm registry into a fresh folder, then moved into place, so an interrupted
  # install never leaves a half cache. The node-fetch override is needed on Node 20 (TOOLCHAIN.md).
  mkdir -p "$(dirname "$CACHE")"
  staging="$(mktemp -d "$CACHE.tmp.XXXXXX")"
  printf '{"private":true,"dependencies":{"verdaccio":"%s"},"overrides":{"node-fetch":"2.7.0"}}\n' \
    "$VERDACCIO_VERSION" >"$staging/package.json"
  (cd "$staging" && env -u npm_config_registry -u pnpm_config_registry \
    npm install --no-audit --no-fund --loglevel=error >/dev/null) || {
    rm -rf "$staging"
    fail "npm install verdaccio@$VERDACCIO_VERSION"
  }
  rm -rf "$CACHE"
  mv "$staging" "$CACHE"
fi

PORT="$(node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')"
REG="http://127.0.0.1:$PORT/"
[[ "$REG" =~ ^http://127\.0\.0\.1:[0-9]+/$ ]] || fail "registry URL $REG is not a loopback URL"
mkdir -p "$WORK/verdaccio/storage"
cat >"$WORK/verdaccio/config.yaml" <<EOF
storage: $WORK/verdaccio/storage
auth: { htpasswd: { file: $WORK/verdaccio/storage/htpasswd, max_users: -1 } }
uplinks: {}
packages:
  '@*/*': { access: \$all, publish: \$anonymous \$authenticated, unpublish: \$anonymous \$authenticated }
  '**': { access: \$all, publish: \$anonymous \$authenticated, unpublish: \$anonymous \$authenticated }
listen: 127.0.0.1:$PORT
publish: { allow_offline: true }
log: { type: stdout, format: pretty, level: warn }
EOF
node "$CACHE/node_modules/verdaccio/bin/verdaccio" --config "$WORK/verdaccio/config.yaml" >"$WORK/verdaccio.log" 2>&1 &
VPID=$!
for _ in $(seq 1 150); do
  curl -fs "${REG}-/ping" >/dev/null 2>&1 && break
  kill -0 "$VPID" 2>/dev/null || fail "verdaccio exited"
  sleep 0.2
done
curl -fs "${REG}-/ping" >/dev/null || fail "verdaccio did not answer on $REG"
echo "verdaccio pid $VPID on $REG"

# ---------------------------------------------------------------- 2. release from a copy of the work tree
step "copy the work tree and install it"
REPO="$WORK/repo"
mkdir -p "$REPO"
(cd "$ROOT" && git ls-files -z -co --exclude-standard | while IFS= read -r -d '' f; do
  [ -e "$f" ] && printf '%s\0' "$f"
done | tar --null -T - -cf -) | tar -xf - -C "$REPO"
(cd "$REPO" && git init -q -b main && git add -A &&
  git -c user.name=release-test -c user.email=release-test@localhost commit -qm "release-test snapshot")
# Dependencies come from the npm registry (pnpm's store is warm after the workspace install).
(cd "$REPO" && env -u npm_config_registry -u pnpm_config_registry \
  pnpm install --frozen-lockfile --prefer-offline --reporter=silent)

# From here on every npm/pnpm call goes to the local registry only.
export npm_config_registry="$REG" pnpm_config_registry="$REG"
export npm_config_cache="$WORK/npm-cache" npm_config_update_notifier=false npm_config_audit=false npm_config_fund=false
printf 'registry=%s\n' "$REG" >>"$REPO/.npmrc"
[ "$(cd "$REPO" && npm config get registry)" = "$REG" ] || fail "npm would not publish to $REG"
[ "$(cd "$REPO" && pnpm config get registry)" = "$REG" ] || fail "pnpm would not publish to $REG"
for p in "${PACKAGES[@]}"; do
  [ "$(node -p "require('$REPO/packages/$p/package.json').publishConfig?.registry ?? ''")" = "" ] ||
    fail "packages/$p sets publishConfig.registry"
done

release() { # release <expected version>
  (cd "$REPO" && pnpm changeset version >"$WORK/changeset-version.log" 2>&1) ||
    { cat "$WORK/changeset-version.log"; fail "changeset version"; }
  for p in "${PACKAGES[@]}"; do
    v="$(node -p "require('$REPO/packages/$p/package.json').version")"
    [ "$v" = "$1" ] || fail "after changeset version, $p is $v, expected $1 (fixed group)"
  done
  (cd "$REPO" && git add -A && git -c user.name=release-test -c user.email=release-test@localhost commit -qm "Version $1")
  (cd "$REPO" && pnpm release >"$WORK/release.log" 2>&1) || { tail -n 40 "$WORK/release.log"; fail "pnpm release"; }
  grep -E "published|success" "$WORK/release.log" | sed 's/^/  /' || true
  for p in "${PACKAGES[@]}"; do
    [ "$(npm view "@mmgather/$p@$1" version)" = "$1" ] || fail "@mmgather/$p@$1 is not on the local registry"
  done
}

V1="$(node -p "
  const [maj, min] = require('$REPO/packages/folio/package.json').version.split('.').map(Number);
  \`\${maj}.\${min + 1}.0\`")"
step "changeset version + pnpm release → $V1"
ls "$REPO"/.changeset/*.md | grep -v README.md >/dev/null || fail "no changeset to release"
release "$V1"

# ---------------------------------------------------------------- 3. the published tarballs
step "published tarballs: files, manifests, publint, attw"
mkdir -p "$WORK/tarballs"
for p in "${PACKAGES[@]}"; do
  (cd "$WORK/tarballs" && npm pack "@mmgather/$p@$V1" --silent >/dev/null)
done
node "$ROOT/scripts/release/tarball.mjs" "$WORK"/tarballs/*.tgz --version "$V1" --changelog
for t in "$WORK"/tarballs/*.tgz; do
  "$ROOT/node_modules/.bin/publint" run "$t" --strict >"$WORK/publint.log" 2>&1 ||
    { cat "$WORK/publint.log"; fail "publint $(basename "$t")"; }
  "$ROOT/node_modules/.bin/attw" "$t" --profile esm-only >"$WORK/attw.log" 2>&1 ||
    { cat "$WORK/attw.log"; fail "attw $(basename "$t")"; }
done
echo "  publint --strict and attw --profile esm-only: no problems in ${#PACKAGES[@]} tarballs"
for p in arch-generic arch-s390 arch-x86 arch-arm64 teardown; do
  npm view "@mmgather/$p@$V1" --json | node -e '
    const m = JSON.parse(require("fs").readFileSync(0, "utf8"));
    const f = (o) => JSON.stringify(o ?? {});
    console.log(`  published ${m.name}@${m.version}: dependencies ${f(m.dependencies)} peerDependencies ${f(m.peerDependencies)}`);'
done

# ---------------------------------------------------------------- 4. users
consumer() { # consumer <name>: an empty npm project outside the workspace
  mkdir -p "$WORK/users/$1"
  printf '{"name":"user-%s","private":true,"type":"module"}\n' "$1" >"$WORK/users/$1/package.json"
  printf 'registry=%s\n' "$REG" >"$WORK/users/$1/.npmrc"
  echo "$WORK/users/$1"
}
npm_i() { # npm_i <folder> <spec>...
  local dir="$1"
  shift
  (cd "$dir" && npm install --no-audit --no-fund --loglevel=error "$@" >"$WORK/npm.log" 2>&1) ||
    { cat "$WORK/npm.log"; fail "npm install $*"; }
}
readme_specs() { # the README's `pnpm add` line, pinned to a version
  node "$ROOT/scripts/release/run-example.mjs" --install-line "$ROOT/packages/$1/README.md" | tr ' ' '\n' | sed "s/\$/@$2/"
}
installed() { # installed <folder>: "name@version" of every @mmgather package on disk
  (cd "$1" && find node_modules -path '*/@mmgather/*/package.json' -not -path '*/src/*' |
    xargs -r node -e 'for (const f of process.argv.slice(1)) { const j = require(require("path").resolve(f)); console.log(j.name + "@" + j.version) }' |
    sort)
}
one_gather() { # exactly one copy of mmu-gather, at the expected version
  local copies
  copies="$(installed "$1" | grep -c '^@mmgather/mmu-gather@' || true)"
  [ "$copies" = 1 ] || { installed "$1"; fail "$copies copies of @mmgather/mmu-gather in $1"; }
  installed "$1" | grep -qx "@mmgather/mmu-gather@$2" || fail "mmu-gather is not $2 in $1"
}
example() { node "$ROOT/scripts/release/run-example.mjs" "$ROOT/packages/$1/README.md" "$2" "$1"; }

step "user 1: @mmgather/folio alone"
U1="$(consumer folio)"
npm_i "$U1" "@mmgather/folio@$V1"
[ "$(installed "$U1")" = "@mmgather/folio@$V1" ] || { installed "$U1"; fail "folio pulled in other packages"; }
example folio "$U1"

step "user 2: @mmgather/mmu-gather + @mmgather/arch-s390 (README install lines), then arch-generic and swapcache"
U2="$(consumer gather)"
# shellcheck disable=SC2046
npm_i "$U2" $( (readme_specs mmu-gather "$V1"; readme_specs arch-s390 "$V1") | sort -u)
one_gather "$U2" "$V1"
example mmu-gather "$U2"
example arch-s390 "$U2"
# shellcheck disable=SC2046
npm_i "$U2" $( (readme_specs arch-generic "$V1"; readme_specs swapcache "$V1") | sort -u)
one_gather "$U2" "$V1"
example arch-generic "$U2"
example swapcache "$U2"

step "user 3: @mmgather/teardown alone + a third-party adapter, then the README (arch-s390)"
U3="$(consumer teardown)"
npm_i "$U3" "@mmgather/teardown@$V1"
one_gather "$U3" "$V1" # arrived as teardown's peer dependency
node "$ROOT/scripts/release/run-example.mjs" --file "$ROOT/scripts/release/third-party-arch.mts" "$U3" third-party-arch
# shellcheck disable=SC2046
npm_i "$U3" $(readme_specs teardown "$V1")
one_gather "$U3" "$V1"
example teardown "$U3"
echo "  installed: $(installed "$U3" | tr '\n' ' ')"

step "user 4: @mmgather/arch-x86 alone (its README install line)"
U4="$(consumer x86)"
# shellcheck disable=SC2046
npm_i "$U4" $(readme_specs arch-x86 "$V1")
one_gather "$U4" "$V1"
example arch-x86 "$U4"
step "user 5: @mmgather/arch-arm64 alone (its README install line)"
U5="$(consumer arm64)"
# shellcheck disable=SC2046
npm_i "$U5" $(readme_specs arch-arm64 "$V1")
one_gather "$U5" "$V1"
example arch-arm64 "$U5"
echo "  installed: $(installed "$U4" | tr '\n' ' ')"

# ---------------------------------------------------------------- 5. a second release; upgrades; two copies
printf -- '---\n"@mmgather/folio": patch\n---\n\nRelease test: a patch release to upgrade to.\n' >"$REPO/.changeset/release-test-patch.md"
V2="$(node -p "const [a, b, c] = '$V1'.split('.').map(Number); \`\${a}.\${b}.\${c + 1}\`")"
step "second release $V2 (patch to folio; the fixed group moves together)"
release "$V2"
grep -q "## $V2" "$REPO/packages/arch-s390/CHANGELOG.md" || fail "arch-s390 CHANGELOG has no $V2 entry"
grep -q "## $V2" "$REPO/packages/arch-arm64/CHANGELOG.md" || fail "arch-arm64 CHANGELOG has no $V2 entry"

step "user 2 upgrades: mmu-gather alone never gives a second gather; all together is clean"
# npm (even with --strict-peer-deps) lets the user's explicit request win, with an ERESOLVE warning naming
# the adapters' exact peer. Because the gather is a peer, the adapters then share the one new gather: there is
# never a second copy, and `npm ls` flags the unmet exact pins until the adapters are upgraded too.
(cd "$U2" && npm install "@mmgather/mmu-gather@$V2" >"$WORK/npm.log" 2>&1) || { cat "$WORK/npm.log"; fail "npm install"; }
grep -q "peer @mmgather/mmu-gather@\"$V1\" from @mmgather/arch-s390@$V1" "$WORK/npm.log" ||
  { cat "$WORK/npm.log"; fail "npm did not warn about arch-s390's exact peer"; }
one_gather "$U2" "$V2"
if (cd "$U2" && npm ls --all >"$WORK/ls.log" 2>&1); then cat "$WORK/ls.log"; fail "npm ls accepted an unmet exact peer"; fi
grep -q "invalid" "$WORK/ls.log" || { cat "$WORK/ls.log"; fail "npm ls failed for another reason"; }
echo "  default npm: one gather at $V2, warned; npm ls reports $(grep -c invalid "$WORK/ls.log") invalid peer pins until the adapters follow"
# shellcheck disable=SC2046
npm_i "$U2" $(for p in "${PACKAGES[@]}"; do echo "@mmgather/$p@$V2"; done)
one_gather "$U2" "$V2"
[ "$(installed "$U2" | grep -vc "@$V2\$" || true)" = 0 ] || { installed "$U2"; fail "not everything is at $V2"; }
(cd "$U2" && npm ls --all >"$WORK/ls.log" 2>&1) || { cat "$WORK/ls.log"; fail "npm ls after the full upgrade"; }
for p in mmu-gather arch-s390 arch-generic arch-x86 swapcache teardown; do example "$p" "$U2"; done
# shellcheck disable=SC2046
npm_i "$U2" $(readme_specs arch-arm64 "$V2")
one_gather "$U2" "$V2"
example arch-arm64 "$U2"

step "two copies: $V1 (user 3) and $V2 (user 2) recognise each other's errors"
node "$ROOT/scripts/release/two-copies.mjs" "$U3" "$U2"

step "stop verdaccio (pid $VPID)"
kill "$VPID"
wait "$VPID" 2>/dev/null || true
VPID=""
echo "release-test: ${#PACKAGES[@]} packages released twice ($V1, $V2) to the local registry and used from $(ls "$WORK/users" | wc -l) npm projects in $(($(date +%s) - T0)) s"
