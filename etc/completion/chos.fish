# fish completion for chos(1): commands, options, and the names of the trees
# you may use. chos itself computes the candidates (`chos __complete`).
# Installed as $(PREFIX)/share/fish/vendor_completions.d/chos.fish.

function __chos_complete
    set -l words (commandline -opc)
    set -l cur (commandline -ct)
    set -l out ($words[1] __complete -- $words[2..-1] $cur 2>/dev/null)
    switch "$out[1]"
        case '@command *'
            # what `exec NAME` runs: a command line of its own
            __fish_complete_subcommand --fcs-skip=(string replace '@command ' '' -- $out[1])
        case '@file'
            __fish_complete_path $cur
        case '*'
            printf '%s\n' $out
    end
end

complete -c chos -f -a '(__chos_complete)'
