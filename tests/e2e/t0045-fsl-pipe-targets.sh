#!/bin/sh
# Targets as fsl-pipe takes them: a pattern over the output paths ('sub-01/**', '*' and '?'
# within a directory, '**' across), a recipe's name (every output of it; a key of the same name
# wins, and says so), `--subject 01 02` (the values end at the first word naming a target), and
# fsl-pipe's -m local|submit spelling. A target naming nothing is an error offering what is close.
. "$CPIPE_SOURCE_DIR/tests/e2e/lib.sh"
. "$CPIPE_SOURCE_DIR/tests/e2e/study-fixture.sh"

cat >study.tree <<'TREE'
sub-{subject}
    T1w.nii.gz          (t1)
    brain.nii.gz        (brain)
    brain_mask.nii.gz   (brain_mask)
    seg.nii.gz          (seg)
    qc.txt              (qc)
TREE
# Recipe `brain` is named like key brain, which recipe bet makes.
cat >cpipe.yaml <<'YAML'
tree: study.tree
recipes:
  - name: bet
    in: [t1]
    out: [brain, brain_mask]
    run: "cp {t1} {brain} && cp {t1} {brain_mask} && echo bet {subject} >> ran.log"
  - name: fast
    in: [brain]
    out: [seg]
    run: "cp {brain} {seg} && echo fast {subject} >> ran.log"
  - name: brain
    in: [brain, brain_mask]
    out: [qc]
    run: "cat {brain} {brain_mask} > {qc} && echo qc {subject} >> ran.log"
YAML
for subject in 01 02 03 'a*'; do
	mkdir -p "sub-$subject" && echo "T1 $subject" >"sub-$subject/T1w.nii.gz"
done

# A pattern across directories: everything under sub-01, and nothing else.
expect_exit 0 cpipe run 'sub-01/**'
expect_ran "bet 01
fast 01
qc 01"
expect_exit 0 cpipe run './sub-01//**'
expect_err_contains "nothing to do (3 jobs up to date)"
# '*' and '?' stay within a directory, '[...]' is a set: the seg files of 02 and 03 only.
expect_exit 0 cpipe run 'sub-0[23]/s?g.nii.*'
expect_ran "bet 02
bet 03
fast 02
fast 03"
expect_exit 0 cpipe plan '*/seg.nii.gz'
expect_out_contains "2 to run, 6 up to date"
expect_out_contains "fast[subject=a*]"
# A file whose own name has pattern characters is that file; a backslash takes '*' as it is.
expect_exit 0 cpipe plan 'sub-a*/brain_mask.nii.gz'
expect_out_contains "1 to run, 0 up to date"
expect_exit 0 cpipe plan 'sub-a\*/brain_mask.nii.gz'
expect_out "run        bet[subject=a*]  (output missing: sub-a*/brain.nii.gz)
    cp 'sub-a*/T1w.nii.gz' 'sub-a*/brain.nii.gz' && cp 'sub-a*/T1w.nii.gz' 'sub-a*/brain_mask.nii.gz' && echo bet 'a*' >> ran.log
1 to run, 0 up to date, 0 to adopt, 0 held by another run
to run by recipe: bet 1"
# -o (fsl-pipe's --overwrite) reruns exactly the jobs the pattern takes.
expect_exit 0 cpipe run --overwrite 'sub-0?/seg*'
expect_ran "fast 01
fast 02
fast 03"

# status and graph take the same targets.
expect_exit 0 cpipe status -v 'sub-02/*'
expect_out_contains "up-to-date  fast[subject=02]"
grep -q "subject=0[13]" "$WORK/out" && fail "status of sub-02/* shows other subjects: $(cat "$WORK/out")"
pass
expect_exit 0 cpipe graph fast --subject 03
expect_out_contains '"fast[subject=03]"'
expect_out_contains '"bet[subject=03]"'

# A key wins over a recipe of its name, and says so: `brain` is bet's key (up to date here).
expect_exit 0 cpipe plan brain --subject 02 03
expect_out_contains "0 to run, 2 up to date"
expect_err_contains "warning: target 'brain' is a template key and the name of another recipe: it makes key brain (recipe bet); name recipe brain's output for its files: qc"
# --subject's space-separated values, then a target.
expect_exit 0 cpipe run --subject 02 03 qc
expect_ran "qc 02
qc 03"
# A recipe's name: each of its outputs (bet makes brain and brain_mask).
rm sub-01/brain_mask.nii.gz
expect_exit 0 cpipe run bet -p 'subject=01,a*'
expect_ran "bet 01
bet a*"

# --subject 01 02 then targets: the values end at the first word that names a target (a key,
# a recipe, a path or pattern); the comma form and -p still work.
expect_exit 0 cpipe plan -v --subject 01 03 fast 'sub-02/qc.txt'
expect_out_contains "up to date fast[subject=01]"
expect_out_contains "up to date fast[subject=03]"
expect_out_contains "up to date brain[subject=02]"
grep -q "subject=a\*" "$WORK/out" && fail "subject a* taken although --subject 01 03 leaves it out"
pass
expect_exit 0 cpipe plan -v --subject 01,03 02 fast
expect_out_contains "up to date fast[subject=02]"
expect_out_contains "0 to run, 6 up to date"
# '=' takes its one word (commas for more): the next word is a target, here an unknown one.
expect_exit 2 cpipe plan --subject=01 02
expect_err_contains "target '02' is no template key, recipe or file any recipe makes"
# A word that is both a value the tree lists and a target is an error saying how to write either.
sed 's/^sub-{subject}$/subject = 01, fast\nsub-{subject}/' study.tree >listed.tree
sed 's/tree: study.tree/tree: listed.tree/' cpipe.yaml >listed.yaml
expect_exit 2 cpipe plan -f listed.yaml --subject 01 fast
expect_err_contains "'fast' after --subject is both a value of subject and a target: write --subject=...,fast for the value, or put the target before --subject"

# default: takes the same targets; one naming nothing is the recipe file's error, at its line.
printf "default: [fast, 'sub-0[12]/qc.txt']\n" >default.yaml && cat cpipe.yaml >>default.yaml
expect_exit 0 cpipe plan -v -f default.yaml
expect_out_contains "up to date brain[subject=02]"
expect_out_contains "run        fast[subject=a*]"
grep -q "brain\[subject=0[3a]" "$WORK/out" && fail "default: made more than its patterns: $(cat "$WORK/out")"
pass
printf "default: [fast, 'sub-9/**']\n" >default.yaml && cat cpipe.yaml >>default.yaml
expect_exit 2 cpipe plan -f default.yaml
expect_err_contains "default.yaml:1: default: target 'sub-9/**' matches none of the 16 files"

# A target naming nothing: an error with what is close to it.
expect_exit 2 cpipe run 'sub-1/**'
expect_err_contains "target 'sub-1/**' matches none of the 16 files the recipes make; did you mean sub-01/brain.nii.gz, sub-01/brain_mask.nii.gz or sub-01/seg.nii.gz?"
expect_exit 2 cpipe run 'sub-01/brian.nii.gz'
expect_err_contains "target 'sub-01/brian.nii.gz' is no template key, recipe or file any recipe makes; did you mean sub-01/brain.nii.gz?"
expect_exit 2 cpipe run bett
expect_err_contains "did you mean bet (a recipe)?"
expect_exit 2 cpipe run sag
expect_err_contains "did you mean seg?"
expect_exit 2 cpipe run '**/*.pdf'
expect_err_contains "target '**/*.pdf' matches none of the 16 files the recipes make"
[ -e ran.log ] && fail "a failed target ran something: $(cat ran.log)"
pass

# fsl-pipe's -m: local runs here; submit is --submit; anything else is an error.
rm sub-03/qc.txt
expect_exit 0 cpipe run -m local 'sub-03/*'
expect_ran "qc 03"
expect_exit 0 cpipe run --pipeline_method=local
expect_exit 2 cpipe run -m dask
expect_err_contains "-m takes local or submit, not 'dask' (cpipe runs jobs in parallel itself: -m local -j N)"
expect_exit 2 cpipe run -m local --submit
expect_err_contains "-m local and --submit (or -m submit) contradict each other"
expect_exit 2 cpipe run -m submit -n
expect_err_contains "-n/--dry-run and --submit do not go together"
expect_exit 2 cpipe run -m submit --wait -m local
expect_err_contains "contradict"

done_testing
