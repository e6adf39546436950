# memory-rss.gp: RSS and Lua heap over the course of the streamed export
# (bench/memory_export.lua writes the data: items, RSS MiB, Lua heap MiB).
#   gnuplot -e "dat='build/bench/memory-rss.dat'; png='bench/memory-rss.png'; baseline=13.9; tasks=100000" bench/memory-rss.gp
set terminal pngcairo size 900,480 font "DejaVu Sans,11"
set output png
set title sprintf("Streamed export of %d REST tasks through planapi's pager: memory of the Lua process", tasks)
set xlabel "items exported"
set ylabel "MiB"
set yrange [0:70]
set format x "%.0f"
set key outside right top
set grid
plot dat using 1:2 with lines lw 3 lc rgb "#1f77b4" title "RSS", \
     dat using 1:3 with lines lw 2 lc rgb "#2ca02c" title "Lua heap", \
     baseline with lines lw 2 lc rgb "#555555" dt 3 title "before exporting", \
     64 with lines lw 2 lc rgb "#d62728" dt 2 title "target: 64 MB"
