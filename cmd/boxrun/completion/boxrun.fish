# fish completion for boxrun (boxrun completion fish). boxrun itself works
# out the candidates: this script hands it the words and the answer to fish.

function __boxrun_complete
    set -l tokens (commandline -opc)
    set -l cur (commandline -ct)
    set -l out (command $tokens[1] __complete -- $tokens[2..-1] $cur 2>/dev/null)
    or return
    set -l directives (string split ' ' -- (string replace -r '^:' '' -- $out[-1]))
    for d in $directives
        switch $d
            case files
                __fish_complete_path $cur
            case dirs
                __fish_complete_directories $cur
            case 'command=*'
                set -l n (math (string replace 'command=' '' -- $d) + 1)
                if test (count $tokens) -gt $n
                    __fish_complete_subcommand --fcs-skip=$n
                    return
                end
                __fish_complete_command
        end
    end
    string join \n -- $out[1..-2]
end

complete -c boxrun -f -a '(__boxrun_complete)'
