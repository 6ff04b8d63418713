/*
 * kafka-mock: librdkafka's built-in mock cluster as a stand-alone Kafka stand-in for the tests
 * (there is no Kafka broker and no Docker on the project's machines; README, "How the handlers are tested").
 *
 *   kafka-mock [--brokers N] topic:partitions ...
 *
 * Creates a cluster of N brokers (default 1), creates each topic with its partition count (the
 * mock has no CreateTopics API, so topics are made up front), prints the bootstrap servers
 * ("127.0.0.1:port,...") on stdout as one line, then runs until stdin reaches end of file (the
 * parent closed it or died) or SIGTERM/SIGINT arrives. Each mock broker listens on 127.0.0.1
 * only, on a port the kernel picks (rdkafka_mock.c binds INADDR_LOOPBACK, port 0).
 *
 * Faults for tests, one command per stdin line, each answered "ok" (or "error: …") on stdout:
 *   produce-error <code> [count]   the next <count> (default 1) Produce requests fail with <code>
 *   topic-error <topic> <code>     Metadata answers <code> for <topic> (0 clears it)
 *   broker-down <id> | broker-up <id>   take a broker (ids from 1) off the network and back
 *   broker-rtt <id> <ms>           delay the broker's answers by <ms> (0 restores)
 * Codes are Kafka protocol error codes (10 MESSAGE_TOO_LARGE, 29 TOPIC_AUTHORIZATION_FAILED, …).
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

static volatile sig_atomic_t stopping = 0;

static void on_signal(int sig) {
  (void)sig;
  stopping = 1;
}

static void answer(rd_kafka_resp_err_t err) {
  if (err) printf("error: %s\n", rd_kafka_err2str(err));
  else printf("ok\n");
  fflush(stdout);
}

/* One fault-injection command (see the header comment). */
static void command(rd_kafka_mock_cluster_t *mcluster, char *line) {
  char verb[32], topic[256];
  int a = 0, b = 1;
  if (sscanf(line, "produce-error %d %d", &a, &b) >= 1) {
    rd_kafka_resp_err_t errs[64];
    int i;
    if (b < 1 || b > 64) b = 64;
    for (i = 0; i < b; i++) errs[i] = (rd_kafka_resp_err_t)a;
    rd_kafka_mock_push_request_errors_array(mcluster, 0 /* Produce */, (size_t)b, errs);
    answer(RD_KAFKA_RESP_ERR_NO_ERROR);
  } else if (sscanf(line, "topic-error %255s %d", topic, &a) == 2) {
    rd_kafka_mock_topic_set_error(mcluster, topic, (rd_kafka_resp_err_t)a);
    answer(RD_KAFKA_RESP_ERR_NO_ERROR);
  } else if (sscanf(line, "%31s %d", verb, &a) == 2 && strcmp(verb, "broker-down") == 0) {
    answer(rd_kafka_mock_broker_set_down(mcluster, a));
  } else if (sscanf(line, "%31s %d", verb, &a) == 2 && strcmp(verb, "broker-up") == 0) {
    answer(rd_kafka_mock_broker_set_up(mcluster, a));
  } else if (sscanf(line, "broker-rtt %d %d", &a, &b) == 2) {
    answer(rd_kafka_mock_broker_set_rtt(mcluster, a, b));
  } else {
    printf("error: unknown command\n");
    fflush(stdout);
  }
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
  char line[512];
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
  sa.sa_flags = 0; /* no SA_RESTART: fgets() below returns on EINTR so the loop sees the flag */
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);

  printf("%s\n", rd_kafka_mock_cluster_bootstraps(mcluster));
  fflush(stdout);

  /* The mock runs on librdkafka's own threads; this thread only waits for the end. */
  while (!stopping) {
    errno = 0;
    if (fgets(line, sizeof line, stdin)) {
      command(mcluster, line);
      continue;
    }
    if (feof(stdin) || errno != EINTR) break;
    clearerr(stdin);
  }

  rd_kafka_mock_cluster_destroy(mcluster);
  rd_kafka_destroy(rk);
  return 0;
}
