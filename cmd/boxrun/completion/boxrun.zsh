#compdef boxrun
# zsh completion for boxrun (boxrun completion zsh). boxrun itself works
# out the candidates: this script hands it the words and the answer to zsh.

_boxrun() {
    local -a lines cands directives
    local prog=${words[1]} d
    lines=("${(@f)$("${~prog}" __complete -- "${(@)words[2,CURRENT]}" 2>/dev/null)}") || return 1
    directives=(${(s: :)${lines[-1]#:}})
    cands=("${(@)lines[1,-2]}")
    cands=(${cands:#})
    for d in $directives; do
        case $d in
        files) _files ;;
        dirs) _files -/ ;;
        command=*)
            local n=$(( ${d#command=} + 1 ))
            if (( CURRENT > n )); then
                shift $n words
                (( CURRENT -= n ))
                _normal
                return
            fi
            _command_names -e
            ;;
        esac
    done
    if (( ${directives[(I)nospace]} )); then
        compadd -S '' -- $cands
    else
        compadd -- $cands
    fi
}

if [[ $funcstack[1] == _boxrun ]]; then
    _boxrun "$@"
else
    compdef _boxrun boxrun
fi
