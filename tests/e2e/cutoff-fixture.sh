# The chain study of the early cutoff scenarios (t0038, t0105), in the current directory: per
# subject in.txt -> a -> b -> c, and optionally a group job `all` over every c. Each job appends a
# line to ran.log; b fails for a subject while a file fail-b-SUBJECT exists. Usage:
# make_chain_study SUBJECT..., then write_chain_recipes as often as wanted.
make_chain_study() {
	cat >study.tree <<'TREE'
sub-{subject}
    in.txt (in)
    a.txt (a)
    b.txt (b)
    c.txt (c)
all.txt (all)
TREE
	for s in "$@"; do mkdir sub-$s && echo "in $s" >sub-$s/in.txt; done
}

# write_chain_recipes A_COMMAND [B_LINES] [GROUP]: cpipe.yaml with step a's command, B_LINES added
# to recipe b (e.g. "    cutoff: false"), and the group recipe `all` when GROUP is not empty.
write_chain_recipes() {
	cat >cpipe.yaml <<YAML
tree: study.tree
recipes:
  - name: a
    in: [in]
    out: [a]
    run: "$1 && echo a {subject} >> ran.log"
  - name: b
    in: [a]
    out: [b]
    run: "test ! -e fail-b-{subject} && tr a-z A-Z < {a} > {b} && echo b {subject} >> ran.log"
${2:-}
  - name: c
    in: [b]
    out: [c]
    run: "cat {b} {b} > {c} && echo c {subject} >> ran.log"
YAML
	[ -z "${3:-}" ] || cat >>cpipe.yaml <<'YAML'
  - name: all
    in: [c]
    out: [all]
    batch: [subject]
    run: "cat {c} > {all} && echo all >> ran.log"
YAML
}
