#!/bin/sh
# The pds image's entrypoint; it runs outside a container too, with PDS_HOME set.
#
#   entrypoint.sh                    pds serve --host 0.0.0.0 --port 8000
#   entrypoint.sh --workers 4 ...    the same, with these options added to pds serve
#   entrypoint.sh pds serve ...      that server
#   entrypoint.sh pds COMMAND ...    any other pds command, as it is (pds restore, pds status)
#   entrypoint.sh PROGRAM ...        any other program (sh, say), as it is
#
# Before `pds serve` it makes the vault ready: in an empty PDS_HOME it creates one with the
# passphrase in PDS_PASSPHRASE_FILE (`pds init`: a weak one is refused, with the reason),
# and a vault of an older pds is upgraded with `pds upgrade` (a backup in
# PDS_HOME/backups/ first). A server on an address other than loopback needs PDS_ISSUER,
# the https address clients reach it at. Each problem stops it with one `Error:` line.
set -eu

IMAGE_UID=10001

fail() {
    printf 'Error: %s\n' "$1" >&2
    if [ $# -gt 1 ]; then
        printf 'Hint: %s\n' "$2" >&2
    fi
    exit 1
}

# The --host given to pds serve, else pds serve's own default.
serve_host() {
    host=127.0.0.1
    while [ $# -gt 0 ]; do
        case $1 in
            --host) if [ $# -gt 1 ]; then host=$2; shift; fi ;;
            --host=*) host=${1#--host=} ;;
        esac
        shift
    done
    printf '%s\n' "$host"
}

# pds's own rule (pds.net.loopback_host): localhost, an address of 127.0.0.0/8 written as
# four decimal numbers without leading zeros, or ::1 in any spelling Python accepts (no
# brackets; a zone such as %lo allowed).
is_loopback() {
    [ "$1" = localhost ] || is_ipv4_loopback "$1" || is_ipv6_loopback "$1"
}

is_ipv4_loopback() (
    set -f
    case $1 in
        *.) return 1 ;;
        127.*.*.*) ;;
        *) return 1 ;;
    esac
    IFS=.
    # shellcheck disable=SC2086 # split on the dots, globbing off
    set -- ${1#127.}
    [ $# -eq 3 ] || return 1
    for number in "$@"; do
        case $number in
            '' | *[!0-9]* | 0?* | ????*) return 1 ;;
        esac
        [ "$number" -le 255 ] || return 1
    done
)

is_ipv6_loopback() (
    set -f
    address=${1%%%*}
    if [ "$address" != "$1" ]; then # a zone: not empty, no second % and no /
        zone=${1#*%}
        case $zone in '' | *%* | */*) return 1 ;; esac
    fi
    case $address in
        *:0.0.0.1) address=${address%0.0.0.1}0:1 ;; # the last 32 bits written as IPv4
    esac
    case $address in
        '' | *[!01:]* | *:::* | *::*::* | *:) return 1 ;;
        ::*) ;;
        :*) return 1 ;;
    esac
    case $address in
        *::*) short=yes ;;
        *) short=no ;;
    esac
    IFS=:
    # shellcheck disable=SC2086 # split on the colons, globbing off
    set -- $address
    groups=0
    last=
    for group in "$@"; do
        [ -n "$group" ] || continue
        case $group in ?????*) return 1 ;; esac
        if [ -n "$last" ] && [ "${last#"${last%%[!0]*}"}" != "" ]; then
            return 1 # a group before the last is not zero
        fi
        last=$group
        groups=$((groups + 1))
    done
    case $last in 1 | 01 | 001 | 0001) ;; *) return 1 ;; esac
    if [ "$short" = yes ]; then
        [ "$groups" -le 7 ]
    else
        [ "$groups" -eq 8 ]
    fi
)

check_home() {
    if [ -z "${PDS_HOME:-}" ]; then
        fail "PDS_HOME is not set" "Set it to the folder of the vault (the image sets /data)."
    fi
    if ! mkdir -p "$PDS_HOME" 2>/dev/null || ! [ -d "$PDS_HOME" ]; then
        fail "cannot create PDS_HOME $PDS_HOME (running as uid $(id -u))" \
            "Mount a folder or volume there that uid $IMAGE_UID owns: chown -R $IMAGE_UID:$IMAGE_UID FOLDER"
    fi
    probe="$PDS_HOME/.pds-write-check.$$"
    if ! (: >"$probe") 2>/dev/null; then
        fail "cannot write to PDS_HOME $PDS_HOME (running as uid $(id -u))" \
            "Give the folder or volume to uid $IMAGE_UID: chown -R $IMAGE_UID:$IMAGE_UID FOLDER"
    fi
    rm -f "$probe"
}

check_passphrase() {
    if [ -n "${PDS_PASSPHRASE_FILE:-}" ]; then
        if ! [ -e "$PDS_PASSPHRASE_FILE" ]; then
            fail "PDS_PASSPHRASE_FILE $PDS_PASSPHRASE_FILE does not exist" \
                "Mount the passphrase there as a secret (compose.yaml: secrets: pds_passphrase)."
        fi
        if ! [ -f "$PDS_PASSPHRASE_FILE" ] || ! [ -r "$PDS_PASSPHRASE_FILE" ]; then
            fail "cannot read PDS_PASSPHRASE_FILE $PDS_PASSPHRASE_FILE (running as uid $(id -u))" \
                "Make it a file uid $IMAGE_UID can read."
        fi
    elif [ -z "${PDS_PASSPHRASE:-}" ]; then
        fail "PDS_PASSPHRASE_FILE is not set" \
            "Give the vault's passphrase as a secret file: PDS_PASSPHRASE_FILE=/run/secrets/pds_passphrase."
    fi
}

# An empty PDS_HOME (a new volume's lost+found aside) gets a new vault; one that holds
# other files but no vault.db is not a vault to create over.
prepare_vault() {
    if [ -e "$PDS_HOME/vault.db" ]; then
        pds upgrade
        return
    fi
    for entry in "$PDS_HOME"/* "$PDS_HOME"/.[!.]* "$PDS_HOME"/..?*; do
        if ! [ -e "$entry" ] && ! [ -L "$entry" ]; then
            continue # a pattern that matched nothing
        fi
        if [ "$entry" != "$PDS_HOME/lost+found" ]; then
            fail "PDS_HOME $PDS_HOME holds files but no vault.db; no vault was created there" \
                "Point PDS_HOME at the vault's folder, or restore a backup: pds restore FILE --yes"
        fi
    done
    echo "No vault in $PDS_HOME: creating one with the passphrase in ${PDS_PASSPHRASE_FILE:-PDS_PASSPHRASE}."
    pds init
}

if [ $# -eq 0 ]; then
    set -- pds serve --host 0.0.0.0 --port 8000
elif [ "${1#-}" != "$1" ]; then
    set -- pds serve --host 0.0.0.0 --port 8000 "$@"
fi

if [ "$1" = pds ] && [ $# -gt 1 ] && [ "$2" = serve ]; then
    host=$(serve_host "$@")
    if [ -z "${PDS_ISSUER:-}" ] && ! is_loopback "$host"; then
        fail "PDS_ISSUER is not set, and pds serves on $host, not on loopback" \
            "Set PDS_ISSUER to the https address clients reach the vault at, e.g. https://vault.example.org (http://127.0.0.1:8000 to try it on this machine only)."
    fi
    check_home
    check_passphrase
    prepare_vault
fi

exec "$@"
