/*
 * resp.h - encoding a Redis command as RESP, pure.
 *
 * A command is an array of bulk strings: "*N\r\n" then, per argument,
 * "$len\r\n" the bytes "\r\n". The caller asks for the exact size first,
 * reserves it wherever the bytes are to live (a connection's output
 * buffer), and writes there: encoding needs no memory of its own.
 */
#ifndef TRIREME_PROTO_RESP_H
#define TRIREME_PROTO_RESP_H

#include <stddef.h>

/* The pieces: an array header "*N\r\n" and one bulk string "$len\r\n...\r\n".
 * The writers return the end of what they wrote. */
size_t resp_array_size(int argc);
size_t resp_bulk_size(size_t len);
char *resp_array_write(char *out, int argc);
char *resp_bulk_write(char *out, const char *p, size_t len);

/* The whole command. Bytes it takes on the wire. lens NULL: every argv[i] is a C string. */
size_t resp_command_size(int argc, const char *const *argv, const size_t *lens);
/* Write the command to out, which has resp_command_size() bytes of room;
 * returns the bytes written (that size). */
size_t resp_command_write(char *out, int argc, const char *const *argv, const size_t *lens);

#endif
