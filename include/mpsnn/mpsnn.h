// mpsnn — umbrella header: everything a user needs.
#pragma once
#include "mpsnn/convolution.h"
#include "mpsnn/error.h"
#include "mpsnn/image.h"
#include "mpsnn/kernel.h"
#include "mpsnn/neuron.h"
#include "mpsnn/padding.h"
#include "mpsnn/runtime.h"
#include "mpsnn/state.h"
#include "mpsnn/types.h"
#include "mpsnn/version.h"
