# Recall@10 vs QPS (log scale), one line per library.
# Called by bench_ann as:
#   gnuplot -e "csv='F.csv'; png='F.png'; libs='milvuso hnswlib faiss'; plottitle='...'" plot.gp
if (!exists("csv"))       csv = 'ann.csv'
if (!exists("png"))       png = 'ann.png'
if (!exists("libs"))      libs = 'milvuso hnswlib faiss'
if (!exists("plottitle")) plottitle = 'ANN benchmark'

set terminal pngcairo size 900,600 noenhanced font ',10'
set output png
set datafile separator ','
set title plottitle
set xlabel 'recall@10'
set ylabel 'queries per second (log scale)'
set logscale y
set grid xtics ytics mytics
set key bottom left box opaque
set format y '%.0f'

color(lib) = lib eq 'milvuso' ? '#d62728' : lib eq 'hnswlib' ? '#1f77b4' : '#2ca02c'

plot for [lib in libs] csv skip 1 \
     using (strcol(1) eq lib ? $3 : NaN):(strcol(1) eq lib ? $4 : NaN) \
     with linespoints pointtype 7 pointsize 0.8 linewidth 2 \
     linecolor rgb color(lib) title lib
