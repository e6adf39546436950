# rate-timeline.gp: requests per second of each process sharing one limit,
# stacked, the requests the sandbox refused (429) on top in black, with the limit as a line (bench/rate_timeline.lua writes the data).
#   gnuplot -e "dat='build/bench/rate-timeline.dat'; png='bench/rate-timeline.png'; limit=20; n=4; scope='shm'" bench/rate-timeline.gp
set terminal pngcairo size 900,480 font "DejaVu Sans,11"
set output png
set title sprintf("%d processes sharing one limit of %g requests/s (limiter scope %s), as the sandbox saw them", n, limit, scope)
set xlabel "second of the run"
set ylabel "requests per second"
set yrange [0:limit * 1.3]
set style data histograms
set style histogram rowstacked
set style fill solid 0.85 border rgb "white"
set boxwidth 0.8
set key outside right top
set grid ytics
stats dat using 1 nooutput
set xrange [-0.6:STATS_max + 0.6]
plot for [i=2:n+1] dat using i:xtic(1) title sprintf("process %d", i - 1), \
     dat using n+3 lc rgb "#000000" title "refused (429)", \
     limit with lines lw 3 lc rgb "#d62728" dt 2 title "limit"
