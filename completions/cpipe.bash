# bash completion for cpipe. Every answer comes from `cpipe __complete` (src/cli/cmd_complete.c):
# commands, options (from each command's --help), template keys, recipe names, placeholder flags
# and the placeholder values globbed from the study named on the command line (-f, -C, --data).
# Installed by `cmake --install` into bash-completion's directory; or: source completions/cpipe.bash
_cpipe() {
	# bash splits words at '=' (COMP_WORDBREAKS); cpipe wants --subject=01 and -p subject=01 whole.
	local words=() i cword=0 joined=0 before
	for ((i = 0; i < ${#COMP_WORDS[@]}; i++)); do
		if [[ $i -gt 0 && ( ${COMP_WORDS[i]} == "=" || $joined == 1 ) && ${#words[@]} -gt 1 ]]; then
			words[${#words[@]}-1]+=${COMP_WORDS[i]}
			[[ ${COMP_WORDS[i]} == "=" ]] && joined=1 || joined=0
		else
			words+=("${COMP_WORDS[i]}")
			joined=0
		fi
		[[ $i -eq $COMP_CWORD ]] && cword=$((${#words[@]} - 1))
	done
	local cur=${COMP_WORDS[COMP_CWORD]} whole=${words[cword]}
	[[ $cur == "=" ]] && cur=""
	before=${whole%"$cur"}
	local out rc
	out=$("${COMP_WORDS[0]}" __complete "$cword" "${words[@]}" 2>/dev/null)
	rc=$?
	COMPREPLY=()
	case $rc in
	3) compopt -o filenames 2>/dev/null; mapfile -t COMPREPLY < <(compgen -f -- "$cur") ;;
	4) compopt -o filenames 2>/dev/null; mapfile -t COMPREPLY < <(compgen -d -- "$cur") ;;
	0)
		local line
		while IFS= read -r line; do
			COMPREPLY+=("${line#"$before"}")
		done <<<"$out"
		[[ -z $out ]] && COMPREPLY=()
		# NAME= and --NAME= wait for their value.
		[[ ${#COMPREPLY[@]} -eq 1 && ${COMPREPLY[0]} == *= ]] && compopt -o nospace 2>/dev/null
		;;
	esac
	return 0
}
complete -F _cpipe cpipe
