// mpsnn — version numbers.
#pragma once
#define MPSNN_VERSION_MAJOR 0
#define MPSNN_VERSION_MINOR 1
#define MPSNN_VERSION_PATCH 0
