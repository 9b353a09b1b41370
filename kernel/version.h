/* version.h - the one place Trireme's version is written. */
#ifndef TRIREME_KERNEL_VERSION_H
#define TRIREME_KERNEL_VERSION_H
#define TRIREME_VERSION "0.1.0"
#endif
