/* SPDX-License-Identifier: MIT */
#include "manager.h"
#include "worker.h"

Model *worker_get_model(Worker *w)
{
        return model_ref(w->model);
}

void worker_client_closed(Worker *w)
{
        /* The last connection of a stopping worker closes: the loop has nothing left to do. */
        if (w->stopping && w->n_clients == 0)
                event_base_loopexit(w->base, NULL);
}
