#!/bin/sh
# A {name} means the same data wherever the user put it in the command: bare, inside "...",
# inside '...', in a comment. Hostile values (from directory names) stay data in every context;
# a {name} inside a here-document, where nothing can make it safe, is refused at load.
. "$CPIPE_SOURCE_DIR/tests/e2e/lib.sh"
nl='
'
mkdir study
cd study
cat >study.tree <<'TREE'
sub-{subject}
    T1w.txt (t1)
    bare.txt (bare)
    double.txt (double)
    single.txt (single)
    comment.txt (comment)
all.txt (all)
TREE
cat >cpipe.yaml <<'YAML'
tree: study.tree
default: [bare, double, single, comment, all]
recipes:
  - name: bare
    in: [t1]
    out: [bare]
    run: printf '%s\n' {subject} {t1} > {bare}
  - name: double
    in: [t1]
    out: [double]
    run: printf '%s\n' "subject {subject} reads {t1}" > "{double}"
  - name: single
    in: [t1]
    out: [single]
    run: printf '%s\n' '<{subject}>' > '{single}'
  - name: comment
    in: [t1]
    out: [comment]
    run: |
      cp {t1} {comment}  # a copy of {t1} for {subject}
  - name: all
    in: [t1]
    out: [all]
    batch: [subject]
    run: printf '%s\n' "{subject}" > {all}
YAML
subjects="a b|it's|x\"y|\$(touch PWNED1)|\`touch PWNED2\`|z;touch PWNED3|back\\slash|new${nl}line;touch PWNED4|\"'\$(touch PWNED5)'\""
# The names are split at '|' only for the loops: cpipe is called with the usual IFS, so that a
# wrapper such as valgrind's command line is split into its words.
old_ifs=$IFS
IFS='|'
for s in $subjects; do
	mkdir -p "sub-$s"
	printf 'T1 of %s\n' "$s" >"sub-$s/T1w.txt"
done
IFS=$old_ifs
expect_exit 0 cpipe run -j2
expect_err_contains "37 done, 0 failed"
IFS='|'
for s in $subjects; do
	[ "$(cat "sub-$s/bare.txt")" = "$s${nl}sub-$s/T1w.txt" ] || fail "bare: '$s' gave $(cat "sub-$s/bare.txt")"
	[ "$(cat "sub-$s/double.txt")" = "subject $s reads sub-$s/T1w.txt" ] || fail "double: '$s' gave $(cat "sub-$s/double.txt")"
	[ "$(cat "sub-$s/single.txt")" = "<$s>" ] || fail "single: '$s' gave $(cat "sub-$s/single.txt")"
	cmp -s "sub-$s/comment.txt" "sub-$s/T1w.txt" || fail "comment: '$s' was not copied"
	pass
done
IFS=$old_ifs
# The group step got every value in one word, as "{subject}" asks.
[ "$(wc -l <all.txt)" -eq 2 ] && grep -qF 'back\slash' all.txt || fail "group: $(cat all.txt)"
pass
find .. -name 'PWNED*' | grep -q . && fail "a value was executed as code: $(find .. -name 'PWNED*')"
pass
expect_exit 0 cpipe run
expect_err_contains "nothing to do"

# In a here-document no quoting keeps a value from being code: refused at load, with the way out.
cat >heredoc.yaml <<'YAML'
tree: study.tree
recipes:
  - name: bare
    in: [t1]
    out: [bare]
    run: |
      cat > {bare} <<EOF
      subject {subject}
      EOF
YAML
expect_exit 2 cpipe plan -f heredoc.yaml
expect_err_contains "heredoc.yaml:8: recipe 'bare': run: {subject} is inside a here-document"
expect_err_contains "(x={subject}, then \$x)"
done_testing
