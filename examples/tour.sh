#!/bin/sh
# tour.sh — run the seed examples one after the other (make demo).
#
#   tour.sh PROGRAM...
#
# Each program ports one example of the Python tutorials (the seeds) to C
# with multiproc, or shows what the library adds to them (46: a pool in an
# epoll loop); the programs come in the order given (their numbers).
# Every example runs even if one fails; the tour exits 1 if any failed.

if [ "$#" -eq 0 ]; then
    echo "usage: $0 PROGRAM..." >&2
    exit 2
fi

echo "================================================================"
echo " multiproc tour: the seed examples of Python's multiprocessing,"
echo " ported to C. Each program prints the seed idea it shows, then"
echo " behaves like the Python original (sleeps shortened)."
echo "================================================================"

failed=""
for prog in "$@"; do
    echo
    echo "---- $(basename "$prog") ----"
    if ! "$prog"; then
        failed="$failed $(basename "$prog")"
    fi
done

echo
if [ -n "$failed" ]; then
    echo "tour: FAILED:$failed"
    exit 1
fi
echo "tour: all $# examples ran."
