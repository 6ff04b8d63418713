/*
 * kafka-mock: librdkafka's built-in mock cluster as a stand-alone Kafka stand-in for the tests
 * (there is no Kafka broker and no Docker on the project's machines; PRODUCT.md).
 *
 *   kafka-mock [--brokers N] topic:partitions ...
 *
 * Creates a cluster of N brokers (default 1), creates each topic with its partition count (the
 * mock has no CreateTopics API, so topics are made up front), prints the bootstrap servers
 * ("127.0.0.1:port,...") on stdout as one line, then runs until stdin reaches end of file (the
 * parent closed it or died) or SIGTERM/SIGINT arrives. Each mock broker listens on 127.0.0.1
 * only, on a port the kernel picks (rdkafka_mock.c binds INADDR_LOOPBACK, port 0).
 *
 * Exit status: 0 after a normal stop, 2 for bad arguments, 1 when librdkafka refuses.
 * Built by scripts/ensure-kafka-mock.sh:  gcc -o .tmp/kafka-mock kafka-mock.c -lrdkafka
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t stopping = 0;

static void on_signal(int sig) {
  (void)sig;
  stopping = 1;
}

static void usage(void) {
  fprintf(stderr, "usage: kafka-mock [--brokers N] topic:partitions ...\n");
}

/* "name:count" → name (in place) and count; false when malformed. */
static int parse_topic(char *arg, int *partitions) {
  char *colon = strrchr(arg, ':');
  char *end = NULL;
  long n;
  if (!colon || colon == arg) return 0;
  n = strtol(colon + 1, &end, 10);
  if (*end != '\0' || n < 1 || n > 1000) return 0;
  *colon = '\0';
  *partitions = (int)n;
  return 1;
}

int main(int argc, char **argv) {
  int brokers = 1;
  int first = 1;
  char errstr[512];
  rd_kafka_conf_t *conf;
  rd_kafka_t *rk;
  rd_kafka_mock_cluster_t *mcluster;
  struct sigaction sa;
  char buf[256];
  int i;

  if (argc > 2 && strcmp(argv[1], "--brokers") == 0) {
    brokers = atoi(argv[2]);
    first = 3;
    if (brokers < 1 || brokers > 16) {
      usage();
      return 2;
    }
  }

  conf = rd_kafka_conf_new();
  /* Quiet unless something is wrong: warnings and errors go to stderr. */
  if (rd_kafka_conf_set(conf, "log_level", "4", errstr, sizeof errstr) != RD_KAFKA_CONF_OK) {
    fprintf(stderr, "kafka-mock: %s\n", errstr);
    return 1;
  }
  /* The handle only hosts the mock cluster's thread; it never connects anywhere. */
  rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
  if (!rk) {
    fprintf(stderr, "kafka-mock: rd_kafka_new: %s\n", errstr);
    return 1;
  }
  mcluster = rd_kafka_mock_cluster_new(rk, brokers);
  if (!mcluster) {
    fprintf(stderr, "kafka-mock: could not create a mock cluster of %d broker(s)\n", brokers);
    rd_kafka_destroy(rk);
    return 1;
  }

  for (i = first; i < argc; i++) {
    int partitions = 0;
    rd_kafka_resp_err_t err;
    if (!parse_topic(argv[i], &partitions)) {
      fprintf(stderr, "kafka-mock: bad topic argument %s (want name:partitions)\n", argv[i]);
      usage();
      rd_kafka_mock_cluster_destroy(mcluster);
      rd_kafka_destroy(rk);
      return 2;
    }
    /* Replication factor: every broker holds a replica, so any broker can lead. */
    err = rd_kafka_mock_topic_create(mcluster, argv[i], partitions, brokers);
    if (err) {
      fprintf(stderr, "kafka-mock: topic %s: %s\n", argv[i], rd_kafka_err2str(err));
      rd_kafka_mock_cluster_destroy(mcluster);
      rd_kafka_destroy(rk);
      return 1;
    }
  }

  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0; /* no SA_RESTART: read() below returns EINTR so the loop sees the flag */
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);

  printf("%s\n", rd_kafka_mock_cluster_bootstraps(mcluster));
  fflush(stdout);

  /* The mock runs on librdkafka's own threads; this thread only waits for the end. */
  while (!stopping) {
    ssize_t n = read(STDIN_FILENO, buf, sizeof buf);
    if (n == 0) break;
    if (n < 0 && errno != EINTR) break;
  }

  rd_kafka_mock_cluster_destroy(mcluster);
  rd_kafka_destroy(rk);
  return 0;
}
