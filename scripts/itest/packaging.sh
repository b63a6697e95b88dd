#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Packaging: what scripts/install puts on a host is current, renders, parses and verifies. No
# namespace, no daemon.
#
# 1. `scripts/gen-man --check` regenerates the man pages and completions from $VPND_BIN_DIR's
#    binaries and docs/config.md into a temporary directory: dist/man and dist/completions must be
#    byte for byte the same (whoever adds a subcommand, flag or config key reruns scripts/gen-man).
# 2. Every page in dist/man renders with `man --warnings=all -l` without one warning, and has a
#    NAME, a SYNOPSIS (section 8) and the sections that gen-man puts there (vpnd(8): a COMMANDS
#    subsection for each subcommand that `vpnd --help` lists).
# 3. The completions: bash sources each one and completes `vpnd sh` to `show` and `vpnd-keygen gen`
#    to its three commands; fish completes the same; zsh parses each (`zsh -n`) and compinit
#    registers _vpnd.
# 4. `scripts/install --destdir TMP --bin-dir $VPND_BIN_DIR`: exactly the expected files with the
#    expected modes, /etc/vpnd 0700, ExecStart naming /usr/local/bin/vpnd; a second run leaves a
#    config in /etc/vpnd byte for byte and mode as it was; --prefix /usr names /usr/bin/vpnd;
#    bad arguments exit non-zero with one line.
# 5. `systemd-analyze verify` on both unit templates (an instance of each, its ExecStart pointed at
#    the staged binary: systemd is not PID 1 here, verify needs the binary to exist) prints nothing;
#    every capability in CapabilityBoundingSet is one systemd knows; `systemd-analyze security
#    --offline=yes` rates it no worse than 5.0 (the exposure is printed), and verify does flag a
#    misspelt directive (so the check can fail). unit-capabilities.sh runs vpnd under the
#    units' capability bounding set.
# Every tool here is in scripts/lib/packages.sh; a missing one is skipped with a line, or fails
# under CI=true.
source "$(dirname "$0")/../lib/netns.sh"

bin="${VPND_BIN_DIR:?VPND_BIN_DIR must name the directory of the built binaries}"
for tool in vpnd vpnd-keygen vpnd-wg; do require_bin "$tool" >/dev/null; done
dist="$VPND_REPO/dist"
work="$VPND_ITEST_DIR"

# have TOOL: true if TOOL is installed; otherwise skipped with a line, or a failure under CI=true.
have() {
    command -v "$1" >/dev/null && return 0
    [ "${CI:-}" = true ] && fail "$1 is missing (scripts/lib/packages.sh installs it)"
    log "SKIPPED: $1 is not installed (scripts/lib/packages.sh installs it)"
    return 1
}

# 1. Staleness.
log "1. dist/man and dist/completions against what the binaries say now"
"$VPND_REPO/scripts/gen-man" --check --bin-dir "$bin" || fail "dist/ is stale: run scripts/gen-man and commit dist/"

# 2. The pages.
log "2. man --warnings=all -l on every page"
pages=("$dist"/man/*.[0-9])
[ "${#pages[@]}" -eq 4 ] || fail "expected 4 pages in dist/man, found ${#pages[@]}: ${pages[*]}"
if have man && have groff; then
    for page in "${pages[@]}"; do
        MANROFFSEQ='' MANWIDTH=80 timeout 20 man --warnings=all -l "$page" >"$work/page.txt" 2>"$work/page.err" \
            || fail "man -l $(basename "$page") exited non-zero: $(head -3 "$work/page.err")"
        [ ! -s "$work/page.err" ] || fail "man -l $(basename "$page") warns: $(head -5 "$work/page.err")"
        grep -q '^NAME$' "$work/page.txt" || fail "$(basename "$page") has no NAME section"
        case "$page" in *.8) grep -q '^SYNOPSIS$' "$work/page.txt" || fail "$(basename "$page") has no SYNOPSIS" ;; esac
    done
    MANWIDTH=80 man -l "$dist/man/vpnd.8" >"$work/vpnd.txt" 2>/dev/null
    # Every subcommand `vpnd --help` lists has its subsection (a subsection is indented by 3).
    subcommands="$("$bin/vpnd" --help | awk '/^SUBCOMMANDS:/ { s = 1; next } s && /^  [a-z]/ { print $1 }')"
    [ -n "$subcommands" ] || fail "vpnd --help lists no subcommand (the parse of its help broke)"
    for sub in $subcommands; do
        grep -q "^   vpnd $sub\$" "$work/vpnd.txt" || fail "vpnd(8) has no subsection for 'vpnd $sub'"
    done
    MANWIDTH=80 man -l "$dist/man/vpnd.conf.5" >"$work/conf.txt" 2>/dev/null
    for key in PrivateKey ListenPort AllowedIPs Endpoint PersistentKeepalive; do
        grep -q "^       $key\$" "$work/conf.txt" || fail "vpnd.conf(5) does not describe $key"
    done
    log "   ${#pages[@]} pages render without a warning; vpnd(8) covers: $(echo $subcommands)"
fi

# 3. Completions.
log "3. completions"
bash_complete() {  # bash_complete TOOL WORDS...: the candidates for the last word
    bash --norc --noprofile -c '
        source "$1" || exit 3
        tool="$2"; shift 2
        COMP_WORDS=("$tool" "$@"); COMP_CWORD=$#; COMP_LINE="${COMP_WORDS[*]}"; COMP_POINT=${#COMP_LINE}
        function="$(complete -p "$tool" | sed -E "s/.* -F ([^ ]+) .*/\1/")"
        [ -n "$function" ] || exit 4
        "$function" "$tool" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
        printf "%s\n" "${COMPREPLY[@]}" | sort' _ "$@"
}
for tool in vpnd vpnd-keygen vpnd-wg; do
    bash --norc --noprofile -c 'source "$1" && complete -p "$2" >/dev/null' _ "$dist/completions/bash/$tool" "$tool" \
        || fail "bash cannot source dist/completions/bash/$tool or it registers no completion for $tool"
done
[ "$(bash_complete "$dist/completions/bash/vpnd" vpnd sh)" = show ] || fail "bash completes 'vpnd sh' to '$(bash_complete "$dist/completions/bash/vpnd" vpnd sh)', not 'show'"
[ "$(bash_complete "$dist/completions/bash/vpnd-keygen" vpnd-keygen gen | tr '\n' ' ')" = "generate genkey genpsk " ] \
    || fail "bash completes 'vpnd-keygen gen' to '$(bash_complete "$dist/completions/bash/vpnd-keygen" vpnd-keygen gen | tr '\n' ' ')'"
bash_complete "$dist/completions/bash/vpnd" vpnd run --ser | grep_q -x -- --server || fail "bash does not complete 'vpnd run --ser' to --server"
bash_complete "$dist/completions/bash/vpnd" vpnd peer a | grep_q -x -- add || fail "bash does not complete 'vpnd peer a' to add"
if have fish; then
    for tool in vpnd vpnd-keygen vpnd-wg; do
        timeout 10 fish --no-execute "$dist/completions/fish/$tool.fish" || fail "fish cannot parse dist/completions/fish/$tool.fish"
    done
    got="$(timeout 10 fish --no-config -c "source $dist/completions/fish/vpnd.fish; complete -C 'vpnd sh'" | cut -f1)"
    [ "$got" = show ] || fail "fish completes 'vpnd sh' to '$got', not 'show'"
    got="$(timeout 10 fish --no-config -c "source $dist/completions/fish/vpnd-keygen.fish; complete -C 'vpnd-keygen gen'" | cut -f1 | sort | tr '\n' ' ')"
    [ "$got" = "generate genkey genpsk " ] || fail "fish completes 'vpnd-keygen gen' to '$got'"
fi
if have zsh; then
    for tool in vpnd vpnd-keygen vpnd-wg; do
        timeout 10 zsh -n "$dist/completions/zsh/_$tool" || fail "zsh cannot parse dist/completions/zsh/_$tool"
    done
    got="$(timeout 20 zsh -f -c "fpath=($dist/completions/zsh \$fpath); autoload -U compinit; compinit -u -d $work/zcompdump; print -r -- \${_comps[vpnd]} \${_comps[vpnd-keygen]}")"
    [ "$got" = "_vpnd _vpnd-keygen" ] || fail "zsh's compinit registers '$got' for vpnd and vpnd-keygen, not '_vpnd _vpnd-keygen'"
fi

# 4. The install.
log "4. scripts/install --destdir --bin-dir"
stage="$work/stage"
"$VPND_REPO/scripts/install" --destdir "$stage" --bin-dir "$bin" >"$work/install.out" 2>&1 \
    || fail "scripts/install failed: $(tail -3 "$work/install.out")"
(cd "$stage" && find . -mindepth 1 \( -type f -o -type d \) -printf '%m %p\n' | sort -k2) >"$work/installed.txt"
cat >"$work/expected.txt" <<'EOF'
755 ./etc
700 ./etc/vpnd
755 ./usr
755 ./usr/local
755 ./usr/local/bin
755 ./usr/local/bin/vpnd
755 ./usr/local/bin/vpnd-keygen
755 ./usr/local/bin/vpnd-wg
755 ./usr/local/lib
755 ./usr/local/lib/systemd
755 ./usr/local/lib/systemd/system
644 ./usr/local/lib/systemd/system/vpnd-client@.service
644 ./usr/local/lib/systemd/system/vpnd-server@.service
755 ./usr/local/share
755 ./usr/local/share/bash-completion
755 ./usr/local/share/bash-completion/completions
644 ./usr/local/share/bash-completion/completions/vpnd
644 ./usr/local/share/bash-completion/completions/vpnd-keygen
644 ./usr/local/share/bash-completion/completions/vpnd-wg
755 ./usr/local/share/fish
755 ./usr/local/share/fish/vendor_completions.d
644 ./usr/local/share/fish/vendor_completions.d/vpnd-keygen.fish
644 ./usr/local/share/fish/vendor_completions.d/vpnd-wg.fish
644 ./usr/local/share/fish/vendor_completions.d/vpnd.fish
755 ./usr/local/share/man
755 ./usr/local/share/man/man5
644 ./usr/local/share/man/man5/vpnd.conf.5
755 ./usr/local/share/man/man8
644 ./usr/local/share/man/man8/vpnd-keygen.8
644 ./usr/local/share/man/man8/vpnd-wg.8
644 ./usr/local/share/man/man8/vpnd.8
755 ./usr/local/share/zsh
755 ./usr/local/share/zsh/site-functions
644 ./usr/local/share/zsh/site-functions/_vpnd
644 ./usr/local/share/zsh/site-functions/_vpnd-keygen
644 ./usr/local/share/zsh/site-functions/_vpnd-wg
EOF
diff -u "$work/expected.txt" "$work/installed.txt" >&2 || fail "scripts/install staged other files or modes than expected (diff above: - expected, + staged)"
for tool in vpnd vpnd-keygen vpnd-wg; do
    cmp -s "$bin/$tool" "$stage/usr/local/bin/$tool" || fail "the staged $tool is not $bin/$tool"
done
cmp -s "$dist/man/vpnd.8" "$stage/usr/local/share/man/man8/vpnd.8" || fail "the staged vpnd.8 is not dist/man/vpnd.8"
for role in server client; do
    grep -qx "ExecStart=/usr/local/bin/vpnd --$role --config /etc/vpnd/%i.conf" "$stage/usr/local/lib/systemd/system/vpnd-$role@.service" \
        || fail "the staged vpnd-$role@.service does not run /usr/local/bin/vpnd --$role --config /etc/vpnd/%i.conf"
done
grep -q "^0755 $stage/usr/local/bin/vpnd$" "$work/install.out" || fail "scripts/install does not print what it installed: $(head -3 "$work/install.out")"
# A second run keeps a config (and its mode) and says so.
printf '[Interface]\nPrivateKeyFile = keys/office.key\n' >"$stage/etc/vpnd/office.conf"
chmod 600 "$stage/etc/vpnd/office.conf"
before="$(sha256sum "$stage/etc/vpnd/office.conf")"
"$VPND_REPO/scripts/install" --destdir "$stage" --bin-dir "$bin" >"$work/install2.out" 2>&1 || fail "a second scripts/install failed: $(tail -3 "$work/install2.out")"
[ "$(sha256sum "$stage/etc/vpnd/office.conf")" = "$before" ] || fail "a second install changed /etc/vpnd/office.conf"
[ "$(stat -c %a "$stage/etc/vpnd/office.conf") $(stat -c %a "$stage/etc/vpnd")" = "600 700" ] \
    || fail "a second install changed modes in /etc/vpnd: $(stat -c '%a %n' "$stage/etc/vpnd" "$stage/etc/vpnd/office.conf")"
grep -q "^kept $stage/etc/vpnd (mode 700)" "$work/install2.out" || fail "a second install does not say it kept /etc/vpnd: $(cat "$work/install2.out")"
# Another prefix: its units run that prefix's binary.
"$VPND_REPO/scripts/install" --destdir "$work/stage-usr" --prefix /usr --bin-dir "$bin" >/dev/null 2>&1 || fail "scripts/install --prefix /usr failed"
grep -qx "ExecStart=/usr/bin/vpnd --server --config /etc/vpnd/%i.conf" "$work/stage-usr/usr/lib/systemd/system/vpnd-server@.service" \
    || fail "with --prefix /usr the server unit does not run /usr/bin/vpnd"
# Bad arguments: one line, non-zero, nothing staged.
for args in "--frobnicate" "--prefix relative" "--bin-dir $work/nothing-here" "--destdir"; do
    set +e
    # shellcheck disable=SC2086
    out="$("$VPND_REPO/scripts/install" --destdir "$work/stage-bad" $args 2>&1)"
    rc=$?
    set -e
    [ "$rc" -ne 0 ] || fail "scripts/install $args succeeded"
    [ "$(printf '%s\n' "$out" | wc -l)" -eq 1 ] || fail "scripts/install $args printed more than one line: $out"
    echo "    scripts/install $args: $out"
    [ ! -e "$work/stage-bad/usr" ] || fail "scripts/install $args staged files before failing"
done
"$VPND_REPO/scripts/install" --help | grep_q -- "--destdir DIR" || fail "scripts/install --help does not describe --destdir"

# 5. The units (the staged ones).
log "5. systemd-analyze verify and security on the unit templates"
if have systemd-analyze; then
    units="$work/units"
    mkdir -p "$units"
    for role in server client; do
        # An instance of the template, as systemctl would load it, its binary the staged one.
        sed "s|^ExecStart=/usr/local/bin/vpnd |ExecStart=$stage/usr/local/bin/vpnd |" \
            "$stage/usr/local/lib/systemd/system/vpnd-$role@.service" >"$units/vpnd-$role@office.service"
        grep -q "^ExecStart=$stage/usr/local/bin/vpnd --$role " "$units/vpnd-$role@office.service" || fail "no ExecStart to point at the staged binary"
        timeout 60 systemd-analyze verify --man=no "$units/vpnd-$role@office.service" >"$work/verify.out" 2>&1 \
            || fail "systemd-analyze verify vpnd-$role@office.service failed: $(head -5 "$work/verify.out")"
        [ ! -s "$work/verify.out" ] || fail "systemd-analyze verify vpnd-$role@office.service complains: $(head -5 "$work/verify.out")"
        caps="$(sed -n 's/^CapabilityBoundingSet=//p' "$units/vpnd-$role@office.service")"
        [ -n "$caps" ] || fail "vpnd-$role@.service has no CapabilityBoundingSet="
        # shellcheck disable=SC2086
        systemd-analyze capability $caps >/dev/null 2>"$work/caps.err" || fail "vpnd-$role@.service names an unknown capability: $(cat "$work/caps.err")"
        timeout 60 systemd-analyze security --offline=yes "$units/vpnd-$role@office.service" >"$work/security.out" 2>&1 \
            || fail "systemd-analyze security --offline=yes failed: $(tail -3 "$work/security.out")"
        exposure="$(sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p' "$work/security.out")"
        [ -n "$exposure" ] || fail "systemd-analyze security printed no exposure level: $(tail -3 "$work/security.out")"
        awk -v e="$exposure" 'BEGIN { exit !(e <= 5.0) }' || fail "vpnd-$role@.service's exposure is $exposure (above 5.0): a hardening line was lost"
        log "   vpnd-$role@.service verifies clean; exposure $exposure; bounding set $caps"
    done
    # The check catches a broken unit (it can fail).
    sed 's/^ProtectSystem=strict/ProtectSytem=strict/' "$units/vpnd-server@office.service" >"$units/vpnd-broken@office.service"
    timeout 60 systemd-analyze verify --man=no "$units/vpnd-broken@office.service" >"$work/verify.out" 2>&1 || true
    grep -q "Unknown key 'ProtectSytem'" "$work/verify.out" || fail "systemd-analyze verify did not flag a misspelt directive: $(head -3 "$work/verify.out")"
fi
log "packaging passed"
