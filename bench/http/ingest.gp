# Lag and rates over time of a bench_ingest run.
# Called by bench_ingest.py as:
#   gnuplot -e "csv='series.csv'; probes='probes.csv'; png='F.png'; plottitle='...'; loadend=300; haslag=1" ingest.gp
# series.csv: t,accepted_rate,applied_rate,backlog,apply_lag_s,worker_lag_s,generation
# probes.csv: accepted_t,freshness_s  (t in seconds from the load's start)
if (!exists("csv"))       csv = 'series.csv'
if (!exists("probes"))    probes = 'probes.csv'
if (!exists("png"))       png = 'ingest.png'
if (!exists("plottitle")) plottitle = 'ingest'
if (!exists("loadend"))   loadend = 0
if (!exists("haslag"))    haslag = 1   # 0: the worker has no lag_seconds

set terminal pngcairo size 1000,800 noenhanced font ',10'
set output png
set datafile separator ','
set datafile missing 'NaN'
set grid xtics ytics
set arrow 1 from loadend, graph 0 to loadend, graph 1 nohead dashtype 2 linecolor rgb '#777777'

# the worker's own lag metric, when it has one
lagline = haslag ? ", csv skip 1 using 1:6 with lines linewidth 2 linecolor rgb '#9467bd' title 'worker lag_seconds metric'" : ""

set multiplot layout 2,1 title plottitle
set ylabel 'seconds'
set key top left box opaque
set xlabel ''
plot probes skip 1 using 1:2 with points pointtype 7 pointsize 0.5 \
         linecolor rgb '#2ca02c' title 'freshness of each probe (accepted -> answered from the model)', \
     csv skip 1 using 1:5 with lines linewidth 2 linecolor rgb '#d62728' \
         title 'trainer read lag (s of accepts not yet read)', \
     10 with lines dashtype 3 linecolor rgb '#000000' title 'target p99 10 s'

set ylabel 'actions per second (5 s window)'
set xlabel 'seconds since the load started (dashed: load stopped)'
set format y '%.0f'
plot csv skip 1 using 1:2 with lines linewidth 2 linecolor rgb '#1f77b4' \
         title 'accepted by nginx', \
     csv skip 1 using 1:3 with lines linewidth 2 linecolor rgb '#ff7f0e' \
         title 'applied by the trainer'
unset multiplot
