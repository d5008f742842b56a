/*
 * test_config.c -- unit tests of the worker's configuration: the defaults,
 * the seed's config/default.toml and conf/milvuso.toml, accepted and
 * refused files (a table each), environment overrides and their errors,
 * mvw_config_set, files on disk, and the round trip of mvw_config_print.
 *
 * The test does not see the schema: an accepted row says "loading this
 * document gives the defaults with these keys set to these texts", which
 * it checks with memcmp against a configuration built with
 * mvw_config_set, so a row covers both the file and the text path.
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "config/config.h"
#include "config/toml.h"

#define NAME  "t.toml"

static char *const  no_env[] = { NULL };


static void
expect_set(mvw_config_t *c, const char *key, const char *text)
{
    mv_err_t  err;

    if (mvw_config_set(c, key, text, &err) != MV_OK) {
        print_message("%s = %s: %s\n", key, text, err.msg);
        fail();
    }
}


static void
expect_same(const mvw_config_t *a, const mvw_config_t *b)
{
    assert_memory_equal(a, b, sizeof(*a));
}


/* Prints c into a malloc'ed buffer (*len bytes, NUL-terminated). */
static char *
print_to_buffer(const mvw_config_t *c, size_t *len)
{
    char  *buf = NULL;
    FILE  *f = open_memstream(&buf, len);

    assert_non_null(f);
    mvw_config_print(c, f);
    assert_int_equal(fclose(f), 0);
    return buf;
}


static char *
temp_file(const char *text, size_t len)
{
    char  *path = strdup("/tmp/test_config_XXXXXX");
    int    fd;

    assert_non_null(path);
    fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, len), (ssize_t) len);
    close(fd);
    return path;
}


static void
test_defaults(void **state)
{
    mvw_config_t  c, d;
    mv_err_t      err;

    (void) state;
    mvw_config_defaults(&c);
    assert_string_equal(c.server.host, "127.0.0.1");
    assert_int_equal(c.server.port, 8080);
    assert_int_equal(c.milvus.enabled, 0);
    assert_string_equal(c.milvus.host, "127.0.0.1");
    assert_int_equal(c.milvus.port, 19530);
    assert_string_equal(c.milvus.collection_name, "recommendation_vectors");
    assert_int_equal(c.milvus.dimension, 64);
    assert_int_equal(c.kafka.enabled, 0);
    assert_string_equal(c.kafka.brokers, "127.0.0.1:9092");
    assert_string_equal(c.kafka.log_topic, "user_actions");
    assert_string_equal(c.kafka.feature_topic, "features");
    assert_string_equal(c.kafka.training_topic, "training_examples");
    assert_string_equal(c.kafka.group_id, "milvuso-worker");
    assert_int_equal(c.kafka.partitions, 4);
    assert_int_equal(c.kafka.replication, 1);
    assert_int_equal(c.redis.enabled, 0);
    assert_string_equal(c.redis.url, "redis://127.0.0.1:6379/0");
    assert_int_equal(c.postgres.enabled, 0);
    assert_string_equal(c.postgres.dsn,
                        "postgresql://milvuso@127.0.0.1/milvuso");
    assert_int_equal(c.recommendation.embedding_dim, 64);
    assert_int_equal(c.recommendation.top_k, 50);
    assert_true(c.recommendation.similarity_threshold == 0.7);
    assert_int_equal(c.recommendation.metric, MV_METRIC_IP);
    assert_int_equal(c.recommendation.hnsw_m, 16);
    assert_int_equal(c.recommendation.hnsw_ef_construction, 200);
    assert_int_equal(c.training.batch_size, 1024);
    assert_true(c.training.learning_rate == 0.05);
    assert_true(c.training.negative_sampling_ratio == 4.0);
    assert_int_equal(c.training.optimizer, MVW_OPTIM_ADAGRAD);
    assert_int_equal(c.training.initializer, MVW_INIT_XAVIER_NORMAL);
    assert_true(c.training.init_scale == 1.0);
    assert_true(c.training.sparse_density == 0.1);
    assert_int_equal(c.training.loss, MVW_MF_SOFTMAX);
    assert_true(c.training.l2 == 0.01);
    assert_true(c.training.adam_beta1 == 0.9);
    assert_true(c.training.adam_beta2 == 0.999);
    assert_true(c.training.adam_epsilon == 1e-8);
    assert_int_equal(c.training.item_bias, 1);
    assert_int_equal(c.training.epochs, 40);
    assert_true(c.training.replay_ratio == 1.0);
    assert_int_equal(c.training.replay_window, 100000);
    assert_int_equal(c.training.seed, 42);
    assert_int_equal(c.training.lr_schedule, 1);
    assert_true(c.training.sampler_power == 0.75);
    assert_true(c.training.action_weights[MV_ACTION_VIEW] == 1.0);
    assert_true(c.training.action_weights[MV_ACTION_CLICK] == 2.0);
    assert_true(c.training.action_weights[MV_ACTION_LIKE] == 3.0);
    assert_true(c.training.action_weights[MV_ACTION_SHARE] == 3.0);
    assert_true(c.training.action_weights[MV_ACTION_ADD_TO_CART] == 4.0);
    assert_true(c.training.action_weights[MV_ACTION_PURCHASE] == 5.0);
    assert_true(c.training.action_weights[MV_ACTION_DISLIKE] == 0.0);
    assert_string_equal(c.worker.action_log, "/var/lib/milvuso/actions");
    assert_string_equal(c.worker.snapshot_dir, "/var/lib/milvuso/snapshots");
    assert_true(c.worker.publish_interval == 5.0);
    assert_int_equal(c.worker.publish_every, 10000);
    assert_int_equal(c.worker.keep_generations, 3);
    assert_int_equal(c.worker.log_level, MVW_LOG_INFO);
    assert_string_equal(c.worker.metrics_file, "");
    assert_true(c.worker.popularity_half_life == 604800.0);
    assert_true(c.worker.poll_interval == 0.1);

    /* No file and no environment: the defaults, byte for byte. */
    memset(&d, 0x5a, sizeof(d));
    assert_int_equal(mvw_config_load(&d, NULL, NULL, &err), MV_OK);
    expect_same(&c, &d);
    memset(&d, 0x5a, sizeof(d));
    assert_int_equal(mvw_config_load(&d, NULL, no_env, &err), MV_OK);
    expect_same(&c, &d);
}


/* Each word of each enum lands on the constant of the module's enum. */
static void
test_enums(void **state)
{
    mvw_config_t  c;

    static const struct {
        const char  *key;
        const char  *word;
        int          value;
    } cases[] = {
        { "recommendation.metric", "ip", MV_METRIC_IP },
        { "recommendation.metric", "cosine", MV_METRIC_COSINE },
        { "recommendation.metric", "l2", MV_METRIC_L2 },
        { "training.optimizer", "sgd", MVW_OPTIM_SGD },
        { "training.optimizer", "adam", MVW_OPTIM_ADAM },
        { "training.optimizer", "adagrad", MVW_OPTIM_ADAGRAD },
        { "training.initializer", "xavier_normal", MVW_INIT_XAVIER_NORMAL },
        { "training.initializer", "xavier_uniform", MVW_INIT_XAVIER_UNIFORM },
        { "training.initializer", "he_normal", MVW_INIT_HE_NORMAL },
        { "training.initializer", "he_uniform", MVW_INIT_HE_UNIFORM },
        { "training.initializer", "lecun_normal", MVW_INIT_LECUN_NORMAL },
        { "training.initializer", "lecun_uniform", MVW_INIT_LECUN_UNIFORM },
        { "training.initializer", "orthogonal", MVW_INIT_ORTHOGONAL },
        { "training.initializer", "sparse", MVW_INIT_SPARSE },
        { "training.initializer", "normal", MVW_INIT_NORMAL },
        { "training.loss", "logistic", MVW_MF_LOGISTIC },
        { "training.loss", "bpr", MVW_MF_BPR },
        { "training.loss", "softmax", MVW_MF_SOFTMAX },
        { "worker.log_level", "error", MVW_LOG_ERROR },
        { "worker.log_level", "warn", MVW_LOG_WARN },
        { "worker.log_level", "info", MVW_LOG_INFO },
        { "worker.log_level", "debug", MVW_LOG_DEBUG },
    };

    (void) state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        mvw_config_defaults(&c);
        expect_set(&c, cases[i].key, cases[i].word);
        if (strcmp(cases[i].key, "recommendation.metric") == 0) {
            assert_int_equal(c.recommendation.metric, cases[i].value);
        } else if (strcmp(cases[i].key, "training.optimizer") == 0) {
            assert_int_equal(c.training.optimizer, cases[i].value);
        } else if (strcmp(cases[i].key, "training.initializer") == 0) {
            assert_int_equal(c.training.initializer, cases[i].value);
        } else if (strcmp(cases[i].key, "training.loss") == 0) {
            assert_int_equal(c.training.loss, cases[i].value);
        } else {
            assert_int_equal(c.worker.log_level, cases[i].value);
        }
    }
}


/* The seed's config/default.toml loads unchanged. */
static void
test_seed_config(void **state)
{
    static const char  seed[] =
        "[server]\nhost = \"0.0.0.0\"\nport = 8080\n"
        "[milvus]\nhost = \"localhost\"\nport = 19530\n"
        "collection_name = \"recommendation_vectors\"\ndimension = 128\n"
        "[kafka]\nbrokers = \"localhost:9092\"\nlog_topic = \"user_actions\"\n"
        "feature_topic = \"features\"\n"
        "training_topic = \"training_examples\"\n"
        "[recommendation]\nembedding_dim = 128\ntop_k = 50\n"
        "similarity_threshold = 0.7\n"
        "[training]\nbatch_size = 1024\nlearning_rate = 0.001\n"
        "negative_sampling_ratio = 4.0";
    mvw_config_t  c, want;
    mv_err_t      err;
    char         *path = temp_file(seed, sizeof(seed) - 1);

    (void) state;
    assert_int_equal(mvw_config_load(&c, path, no_env, &err), MV_OK);
    assert_string_equal(c.server.host, "0.0.0.0");
    assert_string_equal(c.milvus.host, "localhost");
    assert_int_equal(c.milvus.dimension, 128);
    assert_string_equal(c.kafka.brokers, "localhost:9092");
    assert_int_equal(c.recommendation.embedding_dim, 128);
    assert_true(c.training.learning_rate == 0.001);

    mvw_config_defaults(&want);
    expect_set(&want, "server.host", "0.0.0.0");
    expect_set(&want, "milvus.host", "localhost");
    expect_set(&want, "milvus.dimension", "128");
    expect_set(&want, "kafka.brokers", "localhost:9092");
    expect_set(&want, "recommendation.embedding_dim", "128");
    expect_set(&want, "training.learning_rate", "0.001");
    expect_same(&c, &want);
    unlink(path);
    free(path);
}


/* conf/milvuso.toml loads to the defaults and names every key. */
static void
test_example_config(void **state)
{
    const char   *tail = strstr(__FILE__, "worker/tests/test_config.c");
    char          path[4096];
    mvw_config_t  c, d;
    mv_err_t      err;
    mvw_toml_t    conf, printed;
    char         *text, *buf;
    size_t        len;
    FILE         *f;

    (void) state;
    snprintf(path, sizeof(path), "%.*sconf/milvuso.toml",
             tail ? (int) (tail - __FILE__) : 0, __FILE__);
    assert_int_equal(mvw_config_load(&c, path, no_env, &err), MV_OK);
    mvw_config_defaults(&d);
    expect_same(&c, &d);

    f = fopen(path, "r");
    assert_non_null(f);
    buf = malloc(1 << 20);
    assert_non_null(buf);
    len = fread(buf, 1, 1 << 20, f);
    fclose(f);
    assert_int_equal(mvw_toml_parse(&conf, buf, len, &err), MV_OK);

    text = print_to_buffer(&d, &len);
    assert_int_equal(mvw_toml_parse(&printed, text, len, &err), MV_OK);
    for (size_t i = 0; i < printed.n_nodes; i++) {
        if (mvw_toml_find(&conf, printed.nodes[i].path) == NULL) {
            print_message("%s: no %s\n", path, printed.nodes[i].path);
            fail();
        }
    }
    assert_int_equal(conf.n_nodes, printed.n_nodes);
    mvw_toml_free(&conf);
    mvw_toml_free(&printed);
    free(text);
    free(buf);
}


static const struct {
    const char  *doc;
    const char  *set[3][2];         /* keys and texts, NULL-terminated */
} accepted[] = {
    { "", { { NULL, NULL } } },
    { "# nothing\n[server]\n[milvus]\n", { { NULL, NULL } } },
    { "[kafka]\nbrokers = \"[::1]:9092,kafka-2.local:19092\"\n"
      "log_topic = \"user_actions_of_the_shop_in_the_west_eu\"\n",
      { { "kafka.brokers", "[::1]:9092,kafka-2.local:19092" },
        { "kafka.log_topic", "user_actions_of_the_shop_in_the_west_eu" } } },
    { "[training]\nlearning_rate = 0.01\n",
      { { "training.learning_rate", "0.01" } } },
    { "[training]\nlearning_rate = 1\n",
      { { "training.learning_rate", "1.0" } } },
    { "[training]\nlearning_rate = 10\n",
      { { "training.learning_rate", "10" } } },
    { "[training]\nlearning_rate = 1e-3\nepochs = 3\n",
      { { "training.learning_rate", "0.001" }, { "training.epochs", "3" } } },
    { "[training.action_weights]\nclick = 2.5\n",
      { { "training.action_weights.click", "2.5" } } },
    { "training.action_weights.click = 7\n",
      { { "training.action_weights.click", "7" } } },
    { "[training]\naction_weights = { view = 0.5, dislike = 0 }\n",
      { { "training.action_weights.view", "0.5" },
        { "training.action_weights.dislike", "0" } } },
    { "training = { seed = 7, action_weights.like = 1 }\n",
      { { "training.seed", "7" },
        { "training.action_weights.like", "1" } } },
    { "[recommendation]\nmetric = \"cosine\"\n",
      { { "recommendation.metric", "cosine" } } },
    { "[recommendation]\nsimilarity_threshold = -1\n",
      { { "recommendation.similarity_threshold", "-1" } } },
    { "[training]\nadam_beta1 = 0\nadam_beta2 = 0.99999\n",
      { { "training.adam_beta1", "0" }, { "training.adam_beta2",
                                          "0.99999" } } },
    { "[training]\nsparse_density = 1\n",
      { { "training.sparse_density", "1" } } },
    { "[training]\nseed = 9223372036854775807\n",
      { { "training.seed", "9223372036854775807" } } },
    { "[training]\nseed = 0x10\n", { { "training.seed", "16" } } },
    { "[training]\nitem_bias = false\nsampler_power = 2\n",
      { { "training.item_bias", "false" },
        { "training.sampler_power", "2.0" } } },
    { "[milvus]\nenabled = true\nport = 1\n",
      { { "milvus.enabled", "true" }, { "milvus.port", "1" } } },
    { "[server]\nport = 65_535\n", { { "server.port", "65535" } } },
    { "[worker]\nmetrics_file = \"\"\n", { { "worker.metrics_file", "" } } },
    { "[worker]\nmetrics_file = '/tmp/m.prom'\nlog_level = \"debug\"\n",
      { { "worker.metrics_file", "/tmp/m.prom" },
        { "worker.log_level", "debug" } } },
    { "[worker]\naction_log = \"/d/\\u00e9 \\\"q\\\"\"\n",
      { { "worker.action_log", "/d/\xc3\xa9 \"q\"" } } },
    { "[worker]\npublish_every = 0\npopularity_half_life = 0\n",
      { { "worker.publish_every", "0" },
        { "worker.popularity_half_life", "0" } } },
    { "[training]\nreplay_window = 0\nreplay_ratio = 100\n",
      { { "training.replay_window", "0" },
        { "training.replay_ratio", "100" } } },
};


static void
test_accepted(void **state)
{
    mvw_config_t  c, want;
    mv_err_t      err;

    (void) state;
    for (size_t i = 0; i < sizeof(accepted) / sizeof(accepted[0]); i++) {
        mvw_config_defaults(&want);
        for (size_t j = 0; j < 3 && accepted[i].set[j][0] != NULL; j++) {
            expect_set(&want, accepted[i].set[j][0], accepted[i].set[j][1]);
        }
        if (mvw_config_load_buffer(&c, NAME, accepted[i].doc,
                                   strlen(accepted[i].doc), no_env, &err)
            != MV_OK)
        {
            print_message("case %zu: %s\n", i, err.msg);
            fail();
        }
        expect_same(&c, &want);
    }
}


static const struct {
    const char  *doc;
    const char  *msg;
} refused[] = {
    /* ranges and types */
    { "[training]\nlearning_rate = 0\n",
      "t.toml:2: training.learning_rate: must be a number > 0 and <= 10" },
    { "[training]\nlearning_rate = 10.5\n",
      "t.toml:2: training.learning_rate: must be a number > 0 and <= 10" },
    { "[training]\nlearning_rate = nan\n",
      "t.toml:2: training.learning_rate: must be a number > 0 and <= 10" },
    { "[training]\nlearning_rate = inf\n",
      "t.toml:2: training.learning_rate: must be a number > 0 and <= 10" },
    { "[training]\nlearning_rate = \"0.1\"\n",
      "t.toml:2: training.learning_rate: must be a number > 0 and <= 10" },
    { "[training]\nlearning_rate = [0.1]\n",
      "t.toml:2: training.learning_rate: must be a number > 0 and <= 10" },
    { "[training]\ninit_scale = inf\n",
      "t.toml:2: training.init_scale: must be a finite number > 0" },
    { "[training]\nl2 = -0.1\n",
      "t.toml:2: training.l2: must be a finite number >= 0" },
    { "[training]\nadam_beta1 = 1.0\n",
      "t.toml:2: training.adam_beta1: must be a number >= 0 and < 1" },
    { "[training]\nsparse_density = 0\n",
      "t.toml:2: training.sparse_density: must be a number > 0 and <= 1" },
    { "[training]\nnegative_sampling_ratio = 1000.5\n",
      "t.toml:2: training.negative_sampling_ratio: must be a number >= 0 "
      "and <= 1000" },
    { "[recommendation]\nsimilarity_threshold = -1.01\n",
      "t.toml:2: recommendation.similarity_threshold: must be a number >= "
      "-1 and <= 1" },
    { "[training.action_weights]\nclick = -1\n",
      "t.toml:2: training.action_weights.click: must be a finite number "
      ">= 0" },
    { "[worker]\npoll_interval = 0\n",
      "t.toml:2: worker.poll_interval: must be a number > 0 and <= "
      "1000000000" },
    { "[server]\nport = 0\n",
      "t.toml:2: server.port: must be an integer from 1 to 65535" },
    { "[server]\nport = 65536\n",
      "t.toml:2: server.port: must be an integer from 1 to 65535" },
    { "[server]\nport = -1\n",
      "t.toml:2: server.port: must be an integer from 1 to 65535" },
    { "[server]\nport = 80.0\n",
      "t.toml:2: server.port: must be an integer from 1 to 65535" },
    { "[server]\nport = \"80\"\n",
      "t.toml:2: server.port: must be an integer from 1 to 65535" },
    { "[training]\nseed = -1\n",
      "t.toml:2: training.seed: must be an integer from 0 to "
      "9223372036854775807" },
    { "[training]\nlr_schedule = \"cosine\"\n",
      "t.toml:2: training.lr_schedule: must be one of \"constant\", \"linear\"" },
    { "[training]\nbatch_size = 1e3\n",
      "t.toml:2: training.batch_size: must be an integer from 1 to "
      "1000000" },
    { "[milvus]\nenabled = 1\n",
      "t.toml:2: milvus.enabled: must be true or false" },
    { "[milvus]\nenabled = \"true\"\n",
      "t.toml:2: milvus.enabled: must be true or false" },
    { "[server]\nhost = \"\"\n",
      "t.toml:2: server.host: must be a non-empty string" },
    { "[server]\nhost = 5\n",
      "t.toml:2: server.host: must be a non-empty string" },
    { "[worker]\nmetrics_file = false\n",
      "t.toml:2: worker.metrics_file: must be a string" },
    { "[server]\nhost = \"a\\u0001b\"\n",
      "t.toml:2: server.host: must not contain control characters" },
    { "[worker]\naction_log = \"a\\tb\"\n",
      "t.toml:2: worker.action_log: must not contain control characters" },
    { "[recommendation]\nmetric = \"IP\"\n",
      "t.toml:2: recommendation.metric: must be one of \"ip\", \"cosine\", "
      "\"l2\"" },
    { "[recommendation]\nmetric = 1\n",
      "t.toml:2: recommendation.metric: must be one of \"ip\", \"cosine\", "
      "\"l2\"" },
    { "[training]\nloss = \"softmax \"\n",
      "t.toml:2: training.loss: must be one of \"logistic\", \"bpr\", "
      "\"softmax\"" },

    /* Kafka names: a topic's name is a snapshot's stream name */
    { "[kafka]\nlog_topic = \"user_actions_of_the_shop_in_the_west_eu1\"\n",
      "t.toml:2: kafka.log_topic: must be at most 39 bytes (a snapshot "
      "stores the position of each topic by name), not 40" },
    { "[kafka]\nfeature_topic = \"items posted\"\n",
      "t.toml:2: kafka.feature_topic: must be a Kafka topic name: letters, "
      "digits, '.', '_' and '-'" },
    { "[kafka]\ntraining_topic = \"..\"\n",
      "t.toml:2: kafka.training_topic: must not be \".\" or \"..\"" },
    { "[kafka]\nbrokers = \"127.0.0.1\"\n",
      "t.toml:2: kafka.brokers: \"127.0.0.1\" is not host:port (a name, an "
      "IPv4 address or an [IPv6] one, and a port from 1 to 65535); the "
      "list is host:port[,host:port...]" },
    { "[kafka]\nbrokers = \"kafka-1:65536\"\n",
      "t.toml:2: kafka.brokers: \"kafka-1:65536\" is not host:port (a "
      "name, an IPv4 address or an [IPv6] one, and a port from 1 to "
      "65535); the list is host:port[,host:port...]" },

    /* unknown names */
    { "[training]\nlerning_rate = 0.1\n",
      "t.toml:2: unknown key \"training.lerning_rate\"" },
    { "[trainning]\n", "t.toml:1: unknown section \"trainning\"" },
    { "# x\n[training.foo]\n", "t.toml:2: unknown section \"training.foo\"" },
    { "[server.port]\n", "t.toml:1: unknown section \"server.port\"" },
    { "port = 80\n", "t.toml:1: unknown key \"port\"" },
    { "training = 1\n", "t.toml:1: unknown key \"training\"" },
    { "[training]\naction_weights = 1\n",
      "t.toml:2: unknown key \"training.action_weights\"" },
    { "[training.action_weights]\nclik = 1\n",
      "t.toml:2: unknown key \"training.action_weights.clik\"" },
    { "server.hots = \"x\"\n", "t.toml:1: unknown key \"server.hots\"" },
    { "[\"server\"]\n\"port\" = 1\n'x y' = 2\n",
      "t.toml:3: unknown key \"server.\"x y\"\"" },

    /* the first problem in document order */
    { "[server]\nport = 0\n[training]\nlerning_rate = 1\n",
      "t.toml:2: server.port: must be an integer from 1 to 65535" },
    { "[foo]\n[server]\nport = 0\n", "t.toml:1: unknown section \"foo\"" },

    /* TOML errors come first, with a column */
    { "[server]\nport = 8080\nport = 8081\n",
      "t.toml:3:1: duplicate key \"server.port\" (first on line 2)" },
    { "[server]\nhost = \n", "t.toml:2:8: missing value" },
    { "[server]\nhost = localhost\n",
      "t.toml:2:8: invalid value \"localhost\" (strings must be quoted)" },
    { "[worker]\naction_log = \"\"\"x\"\"\"\n",
      "t.toml:2:14: multi-line strings are not supported" },
    { "[worker]\nstarted = 2024-01-01\n",
      "t.toml:2:11: date-time values are not supported" },
    { "[server]\n[server]\n",
      "t.toml:2:2: table [server] defined twice (first on line 1)" },
    { "[lerning]\nrate = 0.1 0.2\n",
      "t.toml:2:12: expected the end of the line after the value, found "
      "'0'" },
};


static void
test_refused(void **state)
{
    mvw_config_t  c, before;
    mv_err_t      err;

    (void) state;
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        memset(&c, 0x5a, sizeof(c));
        memcpy(&before, &c, sizeof(c));
        err.msg[0] = '\0';
        if (mvw_config_load_buffer(&c, NAME, refused[i].doc,
                                   strlen(refused[i].doc), no_env, &err)
            != MV_ERR)
        {
            print_message("case %zu was accepted\n", i);
            fail();
        }
        if (strcmp(err.msg, refused[i].msg) != 0) {
            print_message("case %zu\n", i);
        }
        assert_string_equal(err.msg, refused[i].msg);
        expect_same(&c, &before);
    }
}


static void
test_long_strings(void **state)
{
    mvw_config_t  c;
    mv_err_t      err;
    char          doc[5000], value[4200];

    (void) state;
    memset(value, 'h', 255);
    value[255] = '\0';
    snprintf(doc, sizeof(doc), "[server]\nhost = \"%s\"\n", value);
    assert_int_equal(mvw_config_load_buffer(&c, NAME, doc, strlen(doc),
                                            no_env, &err), MV_OK);
    assert_int_equal(strlen(c.server.host), 255);

    value[255] = 'h';
    value[256] = '\0';
    snprintf(doc, sizeof(doc), "[server]\nhost = \"%s\"\n", value);
    assert_int_equal(mvw_config_load_buffer(&c, NAME, doc, strlen(doc),
                                            no_env, &err), MV_ERR);
    assert_string_equal(err.msg,
                        "t.toml:2: server.host: must be at most 255 bytes");

    memset(value, 'p', 4096);
    value[0] = '/';
    value[4095] = '\0';
    mvw_config_defaults(&c);
    expect_set(&c, "worker.snapshot_dir", value);
    assert_int_equal(strlen(c.worker.snapshot_dir), 4095);
    value[4095] = 'p';
    value[4096] = '\0';
    assert_int_equal(mvw_config_set(&c, "worker.snapshot_dir", value, &err),
                     MV_ERR);
    assert_string_equal(err.msg,
                        "worker.snapshot_dir: must be at most 4095 bytes");
}


static void
test_environment(void **state)
{
    mvw_config_t   c, want;
    mv_err_t       err;
    static const char  file[] =
        "[training]\nlearning_rate = 0.01\nepochs = 5\n"
        "[server]\nhost = \"0.0.0.0\"\n";
    char *const    env[] = {
        "PATH=/usr/bin",
        "MILVUSO_KERNELS=scalar",
        "MILVUSO=1",
        "MILVUSOX_TRAINING_SEED=1",
        "milvuso_training_x=1",
        "MILVUSO_TRAINING_LEARNING_RATE=0.02",
        "MILVUSO_TRAINING_ACTION_WEIGHTS_CLICK=2.5",
        "MILVUSO_SERVER_PORT=0x1F90",
        "MILVUSO_RECOMMENDATION_METRIC=l2",
        "MILVUSO_TRAINING_ITEM_BIAS=false",
        "MILVUSO_WORKER_METRICS_FILE=",
        "MILVUSO_WORKER_ACTION_LOG=/srv/a=b c",
        "MILVUSO_TRAINING_SEED=18",
        NULL
    };

    (void) state;
    /* The environment wins over the file, which wins over the defaults. */
    assert_int_equal(mvw_config_load_buffer(&c, NAME, file, strlen(file),
                                            env, &err), MV_OK);
    mvw_config_defaults(&want);
    expect_set(&want, "training.learning_rate", "0.02");
    expect_set(&want, "training.epochs", "5");
    expect_set(&want, "server.host", "0.0.0.0");
    expect_set(&want, "training.action_weights.click", "2.5");
    expect_set(&want, "server.port", "8080");
    expect_set(&want, "recommendation.metric", "l2");
    expect_set(&want, "training.item_bias", "false");
    expect_set(&want, "worker.metrics_file", "");
    expect_set(&want, "worker.action_log", "/srv/a=b c");
    expect_set(&want, "training.seed", "18");
    expect_same(&c, &want);

    /* Without a file. */
    assert_int_equal(mvw_config_load(&c, NULL, env, &err), MV_OK);
    assert_true(c.training.learning_rate == 0.02);
    assert_int_equal(c.training.epochs, 40);
    assert_string_equal(c.server.host, "127.0.0.1");
}


/* Every key is reachable by its generated variable name. */
static void
test_environment_every_key(void **state)
{
    mvw_config_t   c, d;
    mv_err_t       err;
    mvw_toml_t     doc;
    char          *text, *env[2];
    char           var[512];
    size_t         len, n;

    (void) state;
    mvw_config_defaults(&d);
    text = print_to_buffer(&d, &len);
    assert_int_equal(mvw_toml_parse(&doc, text, len, &err), MV_OK);
    for (size_t i = 0; i < doc.n_nodes; i++) {
        const mvw_toml_node_t   *nd = &doc.nodes[i];
        const mvw_toml_value_t  *v = &nd->value;

        if (v->type == MVW_TOML_TABLE) {
            continue;
        }
        n = (size_t) snprintf(var, sizeof(var), "MILVUSO_");
        for (const char *p = nd->path; *p != '\0'; p++) {
            var[n++] = *p == '.' ? '_' : (char) (*p >= 'a' && *p <= 'z'
                                                 ? *p - 32 : *p);
        }
        /* A value that is valid and differs from the default. */
        switch (v->type) {
        case MVW_TOML_STRING:
            snprintf(var + n, sizeof(var) - n, "=%s", nd->path[0] == 'r'
                     && strstr(nd->path, "metric") ? "l2"
                     : strstr(nd->path, "optimizer") ? "sgd"
                     : strstr(nd->path, "initializer") ? "sparse"
                     : strstr(nd->path, "loss") ? "bpr"
                     : strstr(nd->path, "log_level") ? "warn"
                     : strstr(nd->path, "lr_schedule") ? "constant"
                     : strstr(nd->path, "trainer_input") ? "examples"
                     : strstr(nd->path, "brokers") ? "x:1" : "x");
            break;
        case MVW_TOML_INTEGER:
            snprintf(var + n, sizeof(var) - n, "=%lld",
                     (long long) v->integer + 1);
            break;
        case MVW_TOML_FLOAT:
            snprintf(var + n, sizeof(var) - n, "=%.17g",
                     v->number == 0 ? 0.5 : v->number / 2);
            break;
        case MVW_TOML_BOOL:
            snprintf(var + n, sizeof(var) - n, "=%s",
                     v->boolean ? "false" : "true");
            break;
        default:
            fail();
        }
        env[0] = var;
        env[1] = NULL;
        if (mvw_config_load(&c, NULL, env, &err) != MV_OK) {
            print_message("%s: %s\n", var, err.msg);
            fail();
        }
        if (memcmp(&c, &d, sizeof(c)) == 0) {
            print_message("%s changed nothing\n", var);
            fail();
        }
    }
    mvw_toml_free(&doc);
    free(text);
}


static void
test_environment_errors(void **state)
{
    mvw_config_t  c, before;
    mv_err_t      err;
    char         *env[3];

    static const struct {
        const char  *var;
        const char  *msg;
    } cases[] = {
        { "MILVUSO_TRAINING_LEARNING_RATE=abc",
          "environment MILVUSO_TRAINING_LEARNING_RATE: "
          "training.learning_rate: must be a number > 0 and <= 10" },
        { "MILVUSO_TRAINING_LEARNING_RATE=0",
          "environment MILVUSO_TRAINING_LEARNING_RATE: "
          "training.learning_rate: must be a number > 0 and <= 10" },
        { "MILVUSO_TRAINING_LEARNING_RATE=",
          "environment MILVUSO_TRAINING_LEARNING_RATE: "
          "training.learning_rate: must be a number > 0 and <= 10" },
        { "MILVUSO_TRAINING_LEARNING_RATE=0.1 ",
          "environment MILVUSO_TRAINING_LEARNING_RATE: "
          "training.learning_rate: must be a number > 0 and <= 10" },
        { "MILVUSO_SERVER_PORT=80.5",
          "environment MILVUSO_SERVER_PORT: server.port: must be an integer "
          "from 1 to 65535" },
        { "MILVUSO_SERVER_PORT= 80",
          "environment MILVUSO_SERVER_PORT: server.port: must be an integer "
          "from 1 to 65535" },
        { "MILVUSO_SERVER_PORT=080",
          "environment MILVUSO_SERVER_PORT: server.port: must be an integer "
          "from 1 to 65535" },
        { "MILVUSO_TRAINING_ITEM_BIAS=yes",
          "environment MILVUSO_TRAINING_ITEM_BIAS: training.item_bias: must "
          "be true or false" },
        { "MILVUSO_TRAINING_ITEM_BIAS=1",
          "environment MILVUSO_TRAINING_ITEM_BIAS: training.item_bias: must "
          "be true or false" },
        { "MILVUSO_TRAINING_ITEM_BIAS=TRUE",
          "environment MILVUSO_TRAINING_ITEM_BIAS: training.item_bias: must "
          "be true or false" },
        { "MILVUSO_SERVER_HOST=",
          "environment MILVUSO_SERVER_HOST: server.host: must be a non-empty "
          "string" },
        { "MILVUSO_WORKER_ACTION_LOG=/a\x01",
          "environment MILVUSO_WORKER_ACTION_LOG: worker.action_log: must "
          "not contain control characters" },
        { "MILVUSO_WORKER_ACTION_LOG=/\xff",
          "environment MILVUSO_WORKER_ACTION_LOG: worker.action_log: must "
          "be valid UTF-8" },
        { "MILVUSO_RECOMMENDATION_METRIC=IP",
          "environment MILVUSO_RECOMMENDATION_METRIC: recommendation.metric: "
          "must be one of \"ip\", \"cosine\", \"l2\"" },
        { "MILVUSO_TRAINING_X=1", "environment MILVUSO_TRAINING_X: unknown "
          "key" },
        { "MILVUSO_TRAINING_=1", "environment MILVUSO_TRAINING_: unknown "
          "key" },
        { "MILVUSO_TRAINING_ACTION_WEIGHTS_CLIK=1",
          "environment MILVUSO_TRAINING_ACTION_WEIGHTS_CLIK: unknown key" },
        { "MILVUSO_TRAINING_ACTION_WEIGHTS=1",
          "environment MILVUSO_TRAINING_ACTION_WEIGHTS: unknown key" },
        { "MILVUSO_WORKER_THREADS=2",
          "environment MILVUSO_WORKER_THREADS: unknown key" },
        { "MILVUSO_SERVER_HOST_=x",
          "environment MILVUSO_SERVER_HOST_: unknown key" },
    };

    (void) state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        memset(&c, 0x5a, sizeof(c));
        memcpy(&before, &c, sizeof(c));
        env[0] = "MILVUSO_TRAINING_EPOCHS=3";
        env[1] = (char *) cases[i].var;
        env[2] = NULL;
        if (mvw_config_load(&c, NULL, env, &err) != MV_ERR) {
            print_message("case %zu was accepted\n", i);
            fail();
        }
        if (strcmp(err.msg, cases[i].msg) != 0) {
            print_message("case %zu\n", i);
        }
        assert_string_equal(err.msg, cases[i].msg);
        expect_same(&c, &before);
    }

    /* A good file does not save a bad environment. */
    memset(&c, 0x5a, sizeof(c));
    memcpy(&before, &c, sizeof(c));
    env[0] = "MILVUSO_SERVER_PORT=99999";
    env[1] = NULL;
    assert_int_equal(mvw_config_load_buffer(&c, NAME, "[server]\nport = 1\n",
                                            18, env, &err), MV_ERR);
    assert_string_equal(err.msg, "environment MILVUSO_SERVER_PORT: "
                        "server.port: must be an integer from 1 to 65535");
    expect_same(&c, &before);
}


static void
test_set(void **state)
{
    mvw_config_t  c, before;
    mv_err_t      err;

    (void) state;
    mvw_config_defaults(&c);
    expect_set(&c, "training.learning_rate", "0.5");
    assert_true(c.training.learning_rate == 0.5);
    expect_set(&c, "training.learning_rate", "2");
    assert_true(c.training.learning_rate == 2.0);
    expect_set(&c, "training.seed", "0");
    assert_int_equal(c.training.seed, 0);
    expect_set(&c, "training.action_weights.purchase", "1_000.5");
    assert_true(c.training.action_weights[MV_ACTION_PURCHASE] == 1000.5);
    expect_set(&c, "server.host", "not \"quoted\" \\ raw");
    assert_string_equal(c.server.host, "not \"quoted\" \\ raw");

    memcpy(&before, &c, sizeof(c));
    assert_int_equal(mvw_config_set(&c, "training.lerning_rate", "1", &err),
                     MV_ERR);
    assert_string_equal(err.msg, "unknown key \"training.lerning_rate\"");
    assert_int_equal(mvw_config_set(&c, "training", "1", &err), MV_ERR);
    assert_string_equal(err.msg, "unknown key \"training\"");
    assert_int_equal(mvw_config_set(&c, "TRAINING.SEED", "1", &err), MV_ERR);
    assert_int_equal(mvw_config_set(&c, "training.seed", "1.0", &err),
                     MV_ERR);
    assert_string_equal(err.msg, "training.seed: must be an integer from 0 "
                        "to 9223372036854775807");
    assert_int_equal(mvw_config_set(&c, "training.seed",
                                    "9223372036854775808", &err), MV_ERR);
    assert_int_equal(mvw_config_set(&c, "training.adam_epsilon", "0", &err),
                     MV_ERR);
    assert_string_equal(err.msg, "training.adam_epsilon: must be a finite "
                        "number > 0");
    assert_int_equal(mvw_config_set(&c, "training.optimizer", "Adam", &err),
                     MV_ERR);
    assert_string_equal(err.msg, "training.optimizer: must be one of "
                        "\"sgd\", \"adam\", \"adagrad\"");
    expect_same(&c, &before);
}


static void
test_files(void **state)
{
    mvw_config_t  c;
    mv_err_t      err;
    char         *path, *big, want[512];
    size_t        n;

    (void) state;
    path = temp_file("[server]\nport = 9090\n", 21);
    assert_int_equal(mvw_config_load(&c, path, NULL, &err), MV_OK);
    assert_int_equal(c.server.port, 9090);
    unlink(path);
    free(path);

    path = temp_file("[server]\nport = 9090\nhost = 1\n", 30);
    assert_int_equal(mvw_config_load(&c, path, NULL, &err), MV_ERR);
    snprintf(want, sizeof(want), "%s:3: server.host: must be a non-empty "
             "string", path);
    assert_string_equal(err.msg, want);
    unlink(path);
    free(path);

    path = temp_file("a = 1\0", 6);
    assert_int_equal(mvw_config_load(&c, path, NULL, &err), MV_ERR);
    snprintf(want, sizeof(want), "%s:1:6: NUL byte", path);
    assert_string_equal(err.msg, want);
    unlink(path);
    free(path);

    /* 1 MiB of comment is fine, one byte more is not. */
    big = malloc(MVW_TOML_DOC_MAX + 1);
    assert_non_null(big);
    memset(big, '#', MVW_TOML_DOC_MAX + 1);
    for (n = 1000; n < MVW_TOML_DOC_MAX; n += 1000) {
        big[n] = '\n';
    }
    path = temp_file(big, MVW_TOML_DOC_MAX);
    assert_int_equal(mvw_config_load(&c, path, NULL, &err), MV_OK);
    unlink(path);
    free(path);
    path = temp_file(big, MVW_TOML_DOC_MAX + 1);
    assert_int_equal(mvw_config_load(&c, path, NULL, &err), MV_ERR);
    snprintf(want, sizeof(want), "%s: larger than 1048576 bytes", path);
    assert_string_equal(err.msg, want);
    unlink(path);
    free(path);

    /* The size limit through load_buffer says so without a line. */
    assert_int_equal(mvw_config_load_buffer(&c, NAME, big,
                                            MVW_TOML_DOC_MAX + 1, NULL, &err),
                     MV_ERR);
    assert_string_equal(err.msg,
                        "t.toml: document is larger than 1048576 bytes");
    free(big);

    assert_int_equal(mvw_config_load(&c, "/nonexistent/milvuso.toml", NULL,
                                     &err), MV_ERR);
    assert_string_equal(err.msg,
                        "/nonexistent/milvuso.toml: No such file or directory");
    assert_int_equal(mvw_config_load(&c, "/tmp", NULL, &err), MV_ERR);
    assert_string_equal(err.msg, "/tmp: Is a directory");
}


static void
expect_round_trip(const mvw_config_t *c)
{
    mvw_config_t  back;
    mv_err_t      err;
    char         *text, *again;
    size_t        len, len2;

    text = print_to_buffer(c, &len);
    memset(&back, 0x5a, sizeof(back));
    if (mvw_config_load_buffer(&back, "printed", text, len, no_env, &err)
        != MV_OK)
    {
        print_message("%s\n%s\n", err.msg, text);
        fail();
    }
    expect_same(c, &back);
    again = print_to_buffer(&back, &len2);
    assert_string_equal(text, again);
    free(text);
    free(again);
}


static void
test_print_round_trip(void **state)
{
    mvw_config_t  c;

    (void) state;
    mvw_config_defaults(&c);
    expect_round_trip(&c);

    expect_set(&c, "server.host", "h\xc3\xa9 \"q\" \\b# '");
    expect_set(&c, "kafka.brokers", "a:1,b:2");
    expect_set(&c, "worker.metrics_file", "/m [x] = {y}");
    expect_set(&c, "training.learning_rate", "0.30000000000000004");
    expect_set(&c, "training.l2", "1e-300");
    expect_set(&c, "training.init_scale", "1.7976931348623157e308");
    expect_set(&c, "training.adam_epsilon", "4.9e-324");
    expect_set(&c, "training.adam_beta2", "0.9999999999999999");
    expect_set(&c, "recommendation.similarity_threshold", "-0.0");
    expect_set(&c, "worker.popularity_half_life", "123456789.123456789");
    expect_set(&c, "worker.publish_interval", "1e9");
    expect_set(&c, "training.action_weights.view", "1e15");
    expect_set(&c, "training.action_weights.like", "1e-5");
    expect_set(&c, "training.action_weights.share", "0.1e-5");
    expect_set(&c, "training.seed", "9223372036854775807");
    expect_set(&c, "training.replay_window", "1000000000");
    expect_set(&c, "recommendation.metric", "l2");
    expect_set(&c, "training.initializer", "normal");
    expect_set(&c, "training.item_bias", "false");
    expect_set(&c, "milvus.enabled", "true");
    expect_round_trip(&c);
    assert_true(signbit(c.recommendation.similarity_threshold));
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_enums),
        cmocka_unit_test(test_seed_config),
        cmocka_unit_test(test_example_config),
        cmocka_unit_test(test_accepted),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_long_strings),
        cmocka_unit_test(test_environment),
        cmocka_unit_test(test_environment_every_key),
        cmocka_unit_test(test_environment_errors),
        cmocka_unit_test(test_set),
        cmocka_unit_test(test_files),
        cmocka_unit_test(test_print_round_trip),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
