function __vpnd-keygen_should_offer_completions_for_flags_or_options -a expected_commands
    set -l non_repeating_flags_or_options $argv[2..]
    set -l non_repeating_flags_or_options_absent 0
    set -l positional_index 0
    set -l commands
    __vpnd-keygen_parse_tokens
    test "$commands" = "$expected_commands"; and return $non_repeating_flags_or_options_absent
end

function __vpnd-keygen_should_offer_completions_for_positional -a expected_commands positional_index_comparison expected_positional_index
    set -l non_repeating_flags_or_options
    set -l non_repeating_flags_or_options_absent 0
    set -l positional_index 0
    set -l commands
    __vpnd-keygen_parse_tokens
    test "$commands" = "$expected_commands" -a \( "$positional_index" "$positional_index_comparison" "$expected_positional_index" \)
end

function __vpnd-keygen_parse_tokens -S
    set -l unparsed_tokens (__vpnd-keygen_tokens -pc)
    switch $unparsed_tokens[1]
    case 'vpnd-keygen'
        __vpnd-keygen_parse_subcommand 0 'h/help'
        switch $unparsed_tokens[1]
        case 'generate'
            __vpnd-keygen_parse_subcommand 1 'dir=' 'force' 'h/help'
        case 'show'
            __vpnd-keygen_parse_subcommand 1 'h/help'
        case 'genkey'
            __vpnd-keygen_parse_subcommand 0 'h/help'
        case 'pubkey'
            __vpnd-keygen_parse_subcommand 0 'h/help'
        case 'genpsk'
            __vpnd-keygen_parse_subcommand 0 'h/help'
        case 'help'
            __vpnd-keygen_parse_subcommand -r 1 
        end
    end
end

function __vpnd-keygen_tokens
    if test (string split -m 1 -f 1 -- . "$FISH_VERSION") -gt 3
        commandline --tokens-raw $argv
    else
        commandline -o $argv
    end
end

function __vpnd-keygen_parse_subcommand -S -a positional_count
    argparse -s r -- $argv
    set -l option_specs $argv[2..]
    set -l is_repeating_positional $_flag_r
    set -el _flag_r
    set -a commands $unparsed_tokens[1]
    set positional_index 0
    while true
        set -e unparsed_tokens[1]
        argparse -sn "$commands" $option_specs -- $unparsed_tokens 2> /dev/null
        set unparsed_tokens $argv
        set positional_index (math $positional_index + 1)
        for non_repeating_flag_or_option in $non_repeating_flags_or_options
            if set -ql "_flag_$(string replace -a - _ -- $non_repeating_flag_or_option)"
                set non_repeating_flags_or_options_absent 1
                break
            end
        end
        test (count $unparsed_tokens) -eq 0 -o \( -z "$is_repeating_positional" -a "$positional_index" -gt "$positional_count" \) && break
    end
end

function __vpnd-keygen_complete_directories
    set -l token (commandline -t)
    string match -- '*/' $token
    set -l subdirs $token*/
    printf %s\n $subdirs
end

function __vpnd-keygen_custom_completion
    set -x SAP_SHELL fish
    set -x SAP_SHELL_VERSION $FISH_VERSION
    set -l tokens (__vpnd-keygen_tokens -p)
    if test -z "$(__vpnd-keygen_tokens -t)"
        set -l index (count (__vpnd-keygen_tokens -pc))
        set tokens $tokens[..$index] \'\' $tokens[(math $index + 1)..]
    end
    command $tokens[1] $argv $tokens
end

complete -c 'vpnd-keygen' -f
complete -c 'vpnd-keygen' -n '__vpnd-keygen_should_offer_completions_for_flags_or_options "vpnd-keygen" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'vpnd-keygen' -n '__vpnd-keygen_should_offer_completions_for_positional "vpnd-keygen" -eq 1' -fa 'generate' -d 'Create a key pair: DIR/NAME.key (mode 0600) and DIR/NAME.pub; print the public key.'
complete -c 'vpnd-keygen' -n '__vpnd-keygen_should_offer_completions_for_positional "vpnd-keygen" -eq 1' -fa 'show' -d 'Print the public key of a private key file.'
complete -c 'vpnd-keygen' -n '__vpnd-keygen_should_offer_completions_for_positional "vpnd-keygen" -eq 1' -fa 'genkey' -d 'Print a new private key (base64, clamped, like `wg genkey`).'
complete -c 'vpnd-keygen' -n '__vpnd-keygen_should_offer_completions_for_positional "vpnd-keygen" -eq 1' -fa 'pubkey' -d 'Read a private key on standard input and print its public key (like `wg pubkey`).'
complete -c 'vpnd-keygen' -n '__vpnd-keygen_should_offer_completions_for_positional "vpnd-keygen" -eq 1' -fa 'genpsk' -d 'Print a new pre-shared key (32 random bytes in base64, like `wg genpsk`).'
complete -c 'vpnd-keygen' -n '__vpnd-keygen_should_offer_completions_for_positional "vpnd-keygen" -eq 1' -fa 'help' -d 'Show subcommand help information.'
complete -c 'vpnd-keygen' -n '__vpnd-keygen_should_offer_completions_for_flags_or_options "vpnd-keygen generate" dir' -l 'dir' -d 'Directory for the key files.' -rfka ''
complete -c 'vpnd-keygen' -n '__vpnd-keygen_should_offer_completions_for_flags_or_options "vpnd-keygen generate" force' -l 'force' -d 'Replace an existing NAME.key; the old private key is lost.'
complete -c 'vpnd-keygen' -n '__vpnd-keygen_should_offer_completions_for_flags_or_options "vpnd-keygen generate" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'vpnd-keygen' -n '__vpnd-keygen_should_offer_completions_for_flags_or_options "vpnd-keygen show" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'vpnd-keygen' -n '__vpnd-keygen_should_offer_completions_for_flags_or_options "vpnd-keygen genkey" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'vpnd-keygen' -n '__vpnd-keygen_should_offer_completions_for_flags_or_options "vpnd-keygen pubkey" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'vpnd-keygen' -n '__vpnd-keygen_should_offer_completions_for_flags_or_options "vpnd-keygen genpsk" h help' -s 'h' -l 'help' -d 'Show help information.'
