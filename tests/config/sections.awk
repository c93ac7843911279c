# sections.awk: keep the sections of a --check-config listing that are
# named in `only` (space-separated), or, without `only`, all but those
# named in `except`. A section runs from its [name] line to the next;
# lines before the first belong to none and are kept unless `only` is set.
# With `only`, the output ends with the blank line that ends a section
# followed by another, whether or not one follows: a service's section
# reads the same wherever services/list.h puts it.
#   awk -v only="kvp" -f sections.awk
#   awk -v except="heartbeat kvp" -f sections.awk
BEGIN {
	n = split(only, o, " ")
	for (i = 1; i <= n; i++)
		want[o[i]] = 1
	m = split(except, e, " ")
	for (i = 1; i <= m; i++)
		skip[e[i]] = 1
	keep = n == 0
}
/^\[[^]]*\]$/ {
	name = substr($0, 2, length($0) - 2)
	keep = n ? (name in want) : !(name in skip)
}
keep { print; last = $0; printed = 1 }
END {
	if (n && printed && last != "")
		print ""
}
