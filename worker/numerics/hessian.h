// Hessian tools: being written (see issue 6).
#pragma once
