# bash completion for boxrun (boxrun completion bash). boxrun itself works
# out the candidates: this script hands it the words and the answer to bash.

_boxrun() {
    local cur=${COMP_WORDS[COMP_CWORD]} prog=${COMP_WORDS[0]} out line
    local -a words=() directives=()
    [[ $prog == "~/"* ]] && prog=$HOME/${prog#"~/"}
    out=$("$prog" __complete -- "${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null) || return
    while IFS= read -r line; do
        words+=("$line")
    done <<<"$out"
    line=${words[-1]}
    unset 'words[-1]'
    read -ra directives <<<"${line#:}"
    [[ $cur == "=" ]] && cur=""
    COMPREPLY=()
    local d offset=-1
    for d in "${directives[@]}"; do
        case $d in
        files) COMPREPLY+=($(compgen -f -- "$cur")) ;;
        dirs) COMPREPLY+=($(compgen -d -- "$cur")) ;;
        nospace) compopt -o nospace 2>/dev/null ;;
        command=*) offset=$((${d#command=} + 1)) ;;
        esac
    done
    if ((offset >= 0)); then
        if ((offset < COMP_CWORD)) && declare -F _command_offset >/dev/null; then
            _command_offset "$offset"
            return
        fi
        if ((offset == COMP_CWORD)); then
            COMPREPLY+=($(compgen -c -- "$cur"))
        else
            COMPREPLY+=($(compgen -f -- "$cur"))
        fi
    fi
    COMPREPLY+=("${words[@]}")
}
complete -o default -o bashdefault -F _boxrun boxrun
