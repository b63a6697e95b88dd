function __vpnd_should_offer_completions_for_flags_or_options -a expected_commands
    set -l non_repeating_flags_or_options $argv[2..]
    set -l non_repeating_flags_or_options_absent 0
    set -l positional_index 0
    set -l commands
    __vpnd_parse_tokens
    test "$commands" = "$expected_commands"; and return $non_repeating_flags_or_options_absent
end

function __vpnd_should_offer_completions_for_positional -a expected_commands positional_index_comparison expected_positional_index
    set -l non_repeating_flags_or_options
    set -l non_repeating_flags_or_options_absent 0
    set -l positional_index 0
    set -l commands
    __vpnd_parse_tokens
    test "$commands" = "$expected_commands" -a \( "$positional_index" "$positional_index_comparison" "$expected_positional_index" \)
end

function __vpnd_parse_tokens -S
    set -l unparsed_tokens (__vpnd_tokens -pc)
    switch $unparsed_tokens[1]
    case 'vpnd'
        __vpnd_parse_subcommand 0 'h/help'
        switch $unparsed_tokens[1]
        case 'run'
            __vpnd_parse_subcommand 0 'server' 'client' 'c/config=' 'listen-port=' 'endpoint=' 'mode=' 'transport=' 'mtu=' 'name=' 'threads=' 'no-offload' 'no-tun-offload' 'no-gso' 'no-gro' 'user=' 'v/verbose' 'q/quiet' 'h/help'
        case 'show'
            __vpnd_parse_subcommand -r 1 'json' 'h/help'
        case 'reload'
            __vpnd_parse_subcommand 1 'h/help'
        case 'metrics'
            __vpnd_parse_subcommand 1 'h/help'
        case 'peer'
            __vpnd_parse_subcommand 0 'h/help'
            switch $unparsed_tokens[1]
            case 'add'
                __vpnd_parse_subcommand 1 'c/config=' 'endpoint=' 'address=' 'allowed-ips=' 'dns=' 'psk' 'keepalive=' 'format=' 'qr' 'keep-key=' 'h/help'
            case 'list'
                __vpnd_parse_subcommand 0 'c/config=' 'h/help'
            case 'remove'
                __vpnd_parse_subcommand 1 'c/config=' 'h/help'
            end
        case 'doctor'
            __vpnd_parse_subcommand 1 'h/help'
        case 'down'
            __vpnd_parse_subcommand 1 'h/help'
        case 'help'
            __vpnd_parse_subcommand -r 1 
        end
    end
end

function __vpnd_tokens
    if test (string split -m 1 -f 1 -- . "$FISH_VERSION") -gt 3
        commandline --tokens-raw $argv
    else
        commandline -o $argv
    end
end

function __vpnd_parse_subcommand -S -a positional_count
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

function __vpnd_complete_directories
    set -l token (commandline -t)
    string match -- '*/' $token
    set -l subdirs $token*/
    printf %s\n $subdirs
end

function __vpnd_custom_completion
    set -x SAP_SHELL fish
    set -x SAP_SHELL_VERSION $FISH_VERSION
    set -l tokens (__vpnd_tokens -p)
    if test -z "$(__vpnd_tokens -t)"
        set -l index (count (__vpnd_tokens -pc))
        set tokens $tokens[..$index] \'\' $tokens[(math $index + 1)..]
    end
    command $tokens[1] $argv $tokens
end

complete -c 'vpnd' -f
complete -c 'vpnd' -n '__vpnd_should_offer_completions_for_flags_or_options "vpnd" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'vpnd' -n '__vpnd_should_offer_completions_for_positional "vpnd" -eq 1' -fa 'run' -d 'Run a tunnel end: --server listens on ListenPort, --client connects to the peer\'s Endpoint (the default subcommand).'
complete -c 'vpnd' -n '__vpnd_should_offer_completions_for_positional "vpnd" -eq 1' -fa 'show' -d 'Show running tunnels: keys, endpoints, latest handshake, traffic and drops.'
complete -c 'vpnd' -n '__vpnd_should_offer_completions_for_positional "vpnd" -eq 1' -fa 'reload' -d 'Re-read a running vpnd\'s config file and apply the difference without dropping anyone.'
complete -c 'vpnd' -n '__vpnd_should_offer_completions_for_positional "vpnd" -eq 1' -fa 'metrics' -d 'Print the counters of running tunnels in the Prometheus text format.'
complete -c 'vpnd' -n '__vpnd_should_offer_completions_for_positional "vpnd" -eq 1' -fa 'peer' -d 'Add, list or remove a server\'s clients: the config file and the running vpnd together.'
complete -c 'vpnd' -n '__vpnd_should_offer_completions_for_positional "vpnd" -eq 1' -fa 'doctor' -d 'Explain why a running tunnel is not up, from the daemon\'s own counters.'
complete -c 'vpnd' -n '__vpnd_should_offer_completions_for_positional "vpnd" -eq 1' -fa 'down' -d 'Remove what a stopped vpnd left on the host: its kill switch (KillSwitch = persistent, or after a crash) and forwarding settings.'
complete -c 'vpnd' -n '__vpnd_should_offer_completions_for_positional "vpnd" -eq 1' -fa 'help' -d 'Show subcommand help information.'
complete -c 'vpnd' -n '__vpnd_should_offer_completions_for_flags_or_options "vpnd run" server' -l 'server' -d 'Listen for clients on ListenPort.'
complete -c 'vpnd' -n '__vpnd_should_offer_completions_for_flags_or_options "vpnd run" client' -l 'client' -d 'Connect to the peer\'s Endpoint.'
complete -c 'vpnd' -n '__vpnd_should_offer_completions_for_flags_or_options "vpnd run" c config' -s 'c' -l 'config' -d 'The config file.' -rfka ''
complete -c 'vpnd' -n '__vpnd_should_offer_completions_for_flags_or_options "vpnd run" listen-port' -l 'listen-port' -d 'Override ListenPort.' -rfka ''
complete -c 'vpnd' -n '__vpnd_should_offer_completions_for_flags_or_options "vpnd run" endpoint' -l 'endpoint' -d 'Override the peer\'s Endpoint (host:port, [v6]:port).' -rfka ''
complete -c 'vpnd' -n '__vpnd_should_offer_completions_for_flags_or_options "vpnd run" mode' -l 'mode' -d 'Override Mode: tun or tap.' -rfka ''
complete -c 'vpnd' -n '__vpnd_should_offer_completions_for_flags_or_options "vpnd run" transport' -l 'transport' -d 'Override Transport: udp, tcp or auto (both: UDP first, TCP when UDP is blocked).' -rfka ''
complete -c 'vpnd' -n '__vpnd_should_offer_completions_for_flags_or_options "vpnd run" mtu' -l 'mtu' -d 'Override MTU.' -rfka ''
complete -c 'vpnd' -n '__vpnd_should_offer_completions_for_flags_or_options "vpnd run" name' -l 'name' -d 'Override the interface Name.' -rfka ''
complete -c 'vpnd' -n '__vpnd_should_offer_completions_for_flags_or_options "vpnd run" threads' -l 'threads' -d 'Override Threads: packet threads, 1-64 or auto.' -rfka ''
complete -c 'vpnd' -n '__vpnd_should_offer_completions_for_flags_or_options "vpnd run" no-offload' -l 'no-offload' -d 'Use no kernel offload (for comparison or a kernel that misbehaves).'
complete -c 'vpnd' -n '__vpnd_should_offer_completions_for_flags_or_options "vpnd run" no-tun-offload' -l 'no-tun-offload' -d 'Read and write plain packets on the tun (no TSO/USO super-packets, no coalescing).'
complete -c 'vpnd' -n '__vpnd_should_offer_completions_for_flags_or_options "vpnd run" no-gso' -l 'no-gso' -d 'Send one UDP datagram per packet (no UDP GSO).'
complete -c 'vpnd' -n '__vpnd_should_offer_completions_for_flags_or_options "vpnd run" no-gro' -l 'no-gro' -d 'Receive one UDP datagram per packet (no UDP GRO).'
complete -c 'vpnd' -n '__vpnd_should_offer_completions_for_flags_or_options "vpnd run" user' -l 'user' -d 'Switch to this user (name or id) after set-up; overrides User.' -rfka ''
complete -c 'vpnd' -n '__vpnd_should_offer_completions_for_flags_or_options "vpnd run" v verbose' -s 'v' -l 'verbose' -d 'Log debug details (handshakes, drops).'
complete -c 'vpnd' -n '__vpnd_should_offer_completions_for_flags_or_options "vpnd run" q quiet' -s 'q' -l 'quiet' -d 'Log only warnings and errors.'
complete -c 'vpnd' -n '__vpnd_should_offer_completions_for_flags_or_options "vpnd run" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'vpnd' -n '__vpnd_should_offer_completions_for_flags_or_options "vpnd show" json' -l 'json' -d 'Print JSON for scripts.'
complete -c 'vpnd' -n '__vpnd_should_offer_completions_for_flags_or_options "vpnd show" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'vpnd' -n '__vpnd_should_offer_completions_for_flags_or_options "vpnd reload" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'vpnd' -n '__vpnd_should_offer_completions_for_flags_or_options "vpnd metrics" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'vpnd' -n '__vpnd_should_offer_completions_for_flags_or_options "vpnd peer" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'vpnd' -n '__vpnd_should_offer_completions_for_positional "vpnd peer" -eq 1' -fa 'add' -d 'Make a client: keys, an address, a [Peer] in the server\'s file, applied live; print its config.'
complete -c 'vpnd' -n '__vpnd_should_offer_completions_for_positional "vpnd peer" -eq 1' -fa 'list' -d 'List the server\'s peers: name, public key, addresses, latest handshake, transfer.'
complete -c 'vpnd' -n '__vpnd_should_offer_completions_for_positional "vpnd peer" -eq 1' -fa 'remove' -d 'Remove a peer (by name or public key) from the server\'s file and the running vpnd.'
complete -c 'vpnd' -n '__vpnd_should_offer_completions_for_flags_or_options "vpnd peer add" c config' -s 'c' -l 'config' -d 'The server\'s config file (default: the running vpnd\'s).' -rfka ''
complete -c 'vpnd' -n '__vpnd_should_offer_completions_for_flags_or_options "vpnd peer add" endpoint' -l 'endpoint' -d 'Where clients reach the server: HOST:PORT (required).' -rfka ''
complete -c 'vpnd' -n '__vpnd_should_offer_completions_for_flags_or_options "vpnd peer add" address' -l 'address' -d 'auto, or the client\'s addresses (comma-separated).' -rfka ''
complete -c 'vpnd' -n '__vpnd_should_offer_completions_for_flags_or_options "vpnd peer add" allowed-ips' -l 'allowed-ips' -d 'What the client routes into the tunnel (default: the server\'s subnets).' -rfka ''
complete -c 'vpnd' -n '__vpnd_should_offer_completions_for_flags_or_options "vpnd peer add" dns' -l 'dns' -d 'DNS servers for the client (its DNS line, applied while its tunnel is up).' -rfka ''
complete -c 'vpnd' -n '__vpnd_should_offer_completions_for_flags_or_options "vpnd peer add" psk' -l 'psk' -d 'Add a pre-shared key (both files get it).'
complete -c 'vpnd' -n '__vpnd_should_offer_completions_for_flags_or_options "vpnd peer add" keepalive' -l 'keepalive' -d 'PersistentKeepalive in the client\'s file; 0 for none.' -rfka ''
complete -c 'vpnd' -n '__vpnd_should_offer_completions_for_flags_or_options "vpnd peer add" format' -l 'format' -d 'vpnd, or wg-quick (what the WireGuard apps import).' -rfka ''
complete -c 'vpnd' -n '__vpnd_should_offer_completions_for_flags_or_options "vpnd peer add" qr' -l 'qr' -d 'Print the client\'s config as a QR code for the WireGuard phone apps.'
complete -c 'vpnd' -n '__vpnd_should_offer_completions_for_flags_or_options "vpnd peer add" keep-key' -l 'keep-key' -d 'Also keep the client\'s private key in DIR/NAME.key (mode 0600).' -rfka ''
complete -c 'vpnd' -n '__vpnd_should_offer_completions_for_flags_or_options "vpnd peer add" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'vpnd' -n '__vpnd_should_offer_completions_for_flags_or_options "vpnd peer list" c config' -s 'c' -l 'config' -d 'The server\'s config file (default: the running vpnd\'s).' -rfka ''
complete -c 'vpnd' -n '__vpnd_should_offer_completions_for_flags_or_options "vpnd peer list" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'vpnd' -n '__vpnd_should_offer_completions_for_flags_or_options "vpnd peer remove" c config' -s 'c' -l 'config' -d 'The server\'s config file (default: the running vpnd\'s).' -rfka ''
complete -c 'vpnd' -n '__vpnd_should_offer_completions_for_flags_or_options "vpnd peer remove" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'vpnd' -n '__vpnd_should_offer_completions_for_flags_or_options "vpnd doctor" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'vpnd' -n '__vpnd_should_offer_completions_for_flags_or_options "vpnd down" h help' -s 'h' -l 'help' -d 'Show help information.'
