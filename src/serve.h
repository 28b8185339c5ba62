/* serve.h: `mika serve`, the daemon. */
#ifndef MIKA_SERVE_H
#define MIKA_SERVE_H

/* Runs the daemon until SIGTERM or SIGINT; returns the process exit code. */
int serve_main(int argc, char **argv);
void serve_usage(void);

#endif /* MIKA_SERVE_H */
